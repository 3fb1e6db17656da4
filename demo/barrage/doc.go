// Package barrage is seed 003's bullet-comment ("barrage") application as a library: the comment model and its
// processing (normalise, filter words), the table storage both services share (database/sql; embedded SQLite by
// default), the processor's CloudEvents handler, and the HomePage (an embedded page, its send path publishing to a
// queue behind the Publisher interface, and the server-sent stream of results read back from the table).
//
// The programs in examples/barrage/processor and examples/barrage/homepage are thin mains over it; `tide demo
// barrage` (demo/barrage/play) drives the HomePage's own send path headlessly.
//
// Invariants: a comment is one row, keyed by its id (a redelivery only counts a duplicate); a comment the processor
// cannot parse is answered 400, so the Trigger dead-letters it to /dead-letter, which records it: every published
// comment ends up processed or dead-lettered, never silently dropped. W3C traceparent travels from the page through
// the message (a RocketMQ user property and the comment's JSON) and HTTP, so spans named as the seed (sender,
// receiver, process, result) line up when tracing records them.
package barrage
