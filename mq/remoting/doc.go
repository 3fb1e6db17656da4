// Package remoting is RocketMQ's remoting protocol (4.x wire format, also served by 5.x brokers): length-prefixed
// frames carrying a RemotingCommand whose header is JSON (serialize type 0) or ROCKETMQ binary (type 1), followed by
// an opaque body. It has the codec, a TCP server that dispatches requests to a handler and lets handlers answer
// later (long polling, group commit), and a small client for admin tools and tests.
//
// The server defends itself against its peers: frames are read incrementally (FrameReader), so a frame's memory
// follows the bytes that arrived, not the length announced; a frame must arrive whole within FrameTimeout and a
// connection silent both ways for IdleTimeout is closed; at most MaxConns connections are kept; a failed accept
// (EMFILE) is retried with a back-off and reported by AcceptHealth instead of ending the accept loop.
//
// Invariants: a frame is at most MaxFrameSize bytes (Java's cap) and holds at most twice the bytes received for it
// plus 4 KiB; a decoded Command never aliases the read buffer of another frame; every request the server reads gets
// at most one response, written whole by the connection's single writer so concurrent responders never interleave
// bytes.
package remoting
