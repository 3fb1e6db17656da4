// Package broker serves RocketMQ's broker requests over the remoting protocol on top of package store: sends
// (single, batch, with delay levels, and RocketMQ 5's timer messages at any time: timer.go), pulls with long polling, server-side tag filtering and SQL92 property filtering (package sql92), consumer offsets,
// heartbeats and group membership (notifying members when it changes), retry and dead-letter topics, ordered
// consumption locks, and the topic/group admin requests (with RocketMQ 5's topic attributes: topicattr.go).
//
// Concurrency: requests are handled on each connection's read loop and never block there; answers that must wait
// (sync flush, long polls) are written later from the flusher or the long-poll notifier. Each table has its own
// lock, named next to it; no lock is held while writing to a connection.
package broker
