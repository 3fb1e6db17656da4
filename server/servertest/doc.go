// Package servertest starts tide's whole platform (server.Server: store, API, embedded RocketMQ, eventing, serving
// gateway) for a test, the way mq/mqtest starts the broker and nats-server's test.RunServer starts NATS: free ports
// on 127.0.0.1, a temporary data directory, shutdown when the test ends, and the platform's log shown only when the
// test failed.
package servertest
