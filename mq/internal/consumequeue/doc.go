// Package consumequeue is the per topic-queue index into the commit log: fixed 20-byte entries (commit-log offset
// i64, message size i32, tag hash i64), entry i describing the message with queue offset i. It is derived data:
// the store rebuilds it from the commit log after a crash.
//
// Invariants: entry i sits at byte 20*i of the file once written (new entries are buffered in memory up to 64 KiB
// and written by Sync before every checkpoint); commit-log offsets strictly increase with i; Count() entries are present
// (a partial trailing entry is cut on open); MinOffset() <= Count().
package consumequeue
