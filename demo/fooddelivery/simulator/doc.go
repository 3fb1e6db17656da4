// Package simulator plays customers ordering food through a compressed day: it produces the seed's order messages
// into RocketMQ with the official client (github.com/apache/rocketmq-client-go/v2), at a rate that follows the
// day's breakfast, lunch and dinner peaks (fooddelivery.Day), with several concurrent producers, a progress line,
// and a record of every order the broker acknowledged, so the demo can account for each one afterwards.
//
// The rate is exact rather than random: after t seconds exactly Schedule.Due(t) orders have been handed to the
// producers, so two runs with the same options send the same orders in the same pattern.
package simulator
