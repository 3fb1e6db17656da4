package store

import (
	"strconv"

	"github.com/tide-run/tide/mq/internal/consumequeue"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

// queueTagHash is the third field of a message's consume-queue entry: the hash of its tags, except in the timer
// topic, where it is the time the message falls due (its TIMER_OUT_MS, epoch ms), as Java keeps the delivery time
// of delayed messages in their entries' tags code. The broker's timer then finds due messages from the 20-byte
// entries alone, without reading the commit log, and rebuilds its pending set from them after a restart.
func queueTagHash(m *message.Message) int64 {
	if m.Topic == mqmeta.TimerTopic {
		due, _ := strconv.ParseInt(message.Property(m.Properties, message.PropTimerOutMS), 10, 64)
		return due
	}
	return message.TagsHash(message.Property(m.Properties, message.PropTags))
}

// legacyTimerEntry: a timer-topic entry written by a tide that kept the tag hash there too (the broker reads those
// due times from the messages).
func legacyTimerEntry(m *message.Message, tagHash int64) bool {
	return m.Topic == mqmeta.TimerTopic && tagHash == message.TagsHash(message.Property(m.Properties, message.PropTags))
}

// QueueEntries returns up to max consume-queue entries of a queue from offset from (fewer at its end, none for an
// unknown queue). Entries below the queue's min offset may point at deleted records.
func (s *Store) QueueEntries(topic string, id int32, from int64, max int) ([]consumequeue.Entry, error) {
	q := s.getQueue(topic, id)
	if q == nil {
		return nil, nil
	}
	return q.Get(from, max)
}

// FlushedOffset is the commit-log offset below which everything is on disk.
func (s *Store) FlushedOffset() int64 { return s.cl.FlushedOffset() }

// Flush writes the commit log to disk now (what the flusher does every interval in async mode).
func (s *Store) Flush() error { return s.cl.Flush() }

// retained says whether a segment ending at end holds records RetainFrom asks to keep.
func (s *Store) retained(end int64) bool {
	return s.RetainFrom != nil && s.RetainFrom() < end
}
