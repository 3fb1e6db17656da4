// Package mqtest starts tide's embedded RocketMQ for tests, the way nats-server's test.RunServer does: one call
// gives a running name server and broker on 127.0.0.1 with free ports and a temporary data directory, checks the
// store's invariants and shuts it down when the test ends, and shows the broker's log only when the test failed.
// Restart stops such a server and starts another on the same ports and data directory, as a restart of tide does.
package mqtest
