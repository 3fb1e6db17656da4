// Package bench measures tide's embedded RocketMQ broker against NATS JetStream in the same process and run
// (`tide bench mq`): the official RocketMQ Go client and the nats.go client, the same body size and number of
// concurrent synchronous senders, the same flush policy. Phases per peer: a peak phase (as fast as the senders go:
// messages/s and send latency percentiles), then a half-load phase paced at half of that peer's peak with a
// consumer attached (send latency and produce-to-consume latency). Optionally it execs `tide broker` to measure
// its ready time and idle RSS.
//
// It is a rerunnable command, not a timed test: results depend on the machine and its load, and the report
// prints both so runs can be compared.
package bench
