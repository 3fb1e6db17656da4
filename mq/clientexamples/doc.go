// Package clientexamples holds only a test: it builds the official RocketMQ Go client's example programs from the
// module cache and runs them unchanged against the embedded broker. It is its own package so the example builds do
// not count against the mq package's test time.
package clientexamples
