// Package commitlog is the broker's append-only log: one sequence of records for all topics, stored in fixed-size
// segment files named by their 20-digit start offset, with a CRC per record, async (periodic) or sync (group
// commit) flushing, crash recovery that cuts a torn tail, and retention that deletes the oldest segments.
//
// Record layout at offset p: the stored message (see package message; its PHYSICALOFFSET field equals p and its
// TOTALSIZE field is n) followed by a 4-byte CRC-32C of those n bytes. The next record starts at p+n+4. A segment
// that cannot fit the next record ends with a blank marker (remaining length, BlankMagic) or, when fewer than 8
// bytes remain, with zeros; the next record starts at the next segment's base.
//
// Invariants (checked by Check and by recovery):
//   - records are contiguous from MinOffset() to WriteOffset(); each has a valid length, magic, CRC and a
//     PHYSICALOFFSET equal to its position;
//   - segment bases are multiples of the segment size and strictly increasing; only the last segment is written to;
//   - FlushedOffset() <= WriteOffset(), and every byte below FlushedOffset() has been fsynced;
//   - after a failed write the log is truncated back to the last whole record, or it refuses further writes.
package commitlog
