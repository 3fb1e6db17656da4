// Package message is RocketMQ's message encoding: the stored form that the commit log holds and PULL_MESSAGE
// returns byte for byte, the client's batch encoding (SEND_BATCH_MESSAGE bodies), properties, offset message ids
// and tag hashes (Java's String.hashCode, which consume queues store).
//
// Invariants: Decode never reads past its input and rejects any record whose declared lengths disagree with the
// bytes present; Encode(Decode(b)) == b for every record Decode accepts with magic V1.
package message
