// Package remoting is RocketMQ's remoting protocol (4.x wire format, also served by 5.x brokers): length-prefixed
// frames carrying a RemotingCommand whose header is JSON (serialize type 0) or ROCKETMQ binary (type 1), followed by
// an opaque body. It has the codec, a TCP server that dispatches requests to a handler and lets handlers answer
// later (long polling, group commit), and a small client for admin tools and tests.
//
// Invariants: a frame is at most MaxFrameSize bytes (Java's cap); a decoded Command never aliases the read buffer of
// another frame; every request the server reads gets at most one response, written whole under the connection's
// write lock so concurrent responders never interleave bytes.
package remoting
