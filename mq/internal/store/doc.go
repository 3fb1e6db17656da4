// Package store is the broker's message store: the commit log (package commitlog) plus one consume queue per
// topic-queue (package consumequeue), kept consistent across crashes by a checkpoint, with retention by age and
// disk usage and a consistency checker.
//
// Layout under Dir: commitlog/<20-digit base> segments, consumequeue/<topic>/<queueId> index files, index/ (the
// message index by key and message id), and checkpoint (the commit-log offset below which every consume-queue and
// message-index entry is known to be fsynced).
//
// Invariants (Check verifies them; storage tests run it after each test):
//  1. the commit log is whole: records contiguous from its min to its write offset, each CRC-valid and stamped with
//     its own position (package commitlog);
//  2. entry i of queue (t, q), for i in [min, count), points at a record of topic t, queue q, queue offset i, with
//     the entry's size and tag hash (in the timer topic rmq_sys_wheel_timer: the message's due time, TIMER_OUT_MS),
//     and positions strictly increase with i;
//  3. every record in the log at or above the log's min whose queue exists is indexed by its queue at its queue
//     offset (nothing acknowledged is unreachable), except the records of a deleted topic written before its
//     deletion (its tombstone, tombstone.go), which no queue of a topic created again under that name indexes;
//  4. checkpoint <= the log's flushed offset;
//  5. the message index (index.go) holds exactly the keys of the records at or above the log's min (UNIQ_KEY and
//     each KEYS word under the record's topic; rolled-back transaction messages excepted), each entry reachable
//     from its hash slot.
//
// Puts are serialized by Store.mu: queue offsets are assigned, the records appended and the entries written in one
// critical section, so each queue's order equals commit-log order.
package store
