package store

import (
	"fmt"
	"maps"

	"github.com/tide-run/tide/mq/message"
)

// Check verifies the invariants listed in the package documentation and returns the first violation.
func (s *Store) Check() error {
	s.mu.Lock()
	queues := make(map[qkey]int64, len(s.queues))
	for k, q := range s.queues {
		queues[k] = q.Count()
	}
	tombs := maps.Clone(s.tombs)
	s.mu.Unlock()
	if cp := s.readCheckpoint(); cp > s.cl.FlushedOffset() {
		return fmt.Errorf("invariant 4: checkpoint %d beyond flushed offset %d", cp, s.cl.FlushedOffset())
	}
	// Invariants 1 and 3.
	logMin := s.cl.MinOffset()
	err := s.cl.Scan(logMin, func(pos int64, rec []byte) error {
		m, _, err := message.Decode(rec)
		if err != nil {
			return fmt.Errorf("invariant 1: record at %d: %w", pos, err)
		}
		if m.PhysicalOffset != pos {
			return fmt.Errorf("invariant 1: record at %d stamped %d", pos, m.PhysicalOffset)
		}
		if p, ok := tombs[m.Topic]; ok && pos < p {
			return nil // a deleted incarnation of the topic: its records wait for retention
		}
		count, ok := queues[qkey{m.Topic, m.QueueID}]
		if !ok || m.QueueOffset >= count {
			if !ok {
				return nil // topic deleted: its records wait for retention
			}
			return fmt.Errorf("invariant 3: record at %d (%s/%d offset %d) beyond queue count %d", pos, m.Topic, m.QueueID, m.QueueOffset, count)
		}
		q := s.getQueue(m.Topic, m.QueueID)
		if q == nil {
			return nil
		}
		es, err := q.Get(m.QueueOffset, 1)
		if err != nil {
			return fmt.Errorf("invariant 3: record at %d (%s/%d offset %d) not indexed: %w", pos, m.Topic, m.QueueID, m.QueueOffset, err)
		}
		if len(es) != 1 || es[0].Pos != pos {
			return fmt.Errorf("invariant 3: record at %d (%s/%d offset %d) not indexed (entry %+v)", pos, m.Topic, m.QueueID, m.QueueOffset, es)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Invariant 2.
	for k := range queues {
		q := s.getQueue(k.topic, k.id)
		if q == nil {
			continue
		}
		min, count := q.MinOffset(), q.Count()
		prev := int64(-1)
		for off := min; off < count; off += 1024 {
			es, err := q.Get(off, 1024)
			if err != nil {
				return err
			}
			for i, e := range es {
				qo := off + int64(i)
				if e.Pos <= prev {
					return fmt.Errorf("invariant 2: %s/%d entry %d position %d not after %d", k.topic, k.id, qo, e.Pos, prev)
				}
				prev = e.Pos
				m, _, err := s.cl.ReadMessage(e.Pos)
				if err != nil {
					return fmt.Errorf("invariant 2: %s/%d entry %d: %w", k.topic, k.id, qo, err)
				}
				if m.Topic != k.topic || m.QueueID != k.id || m.QueueOffset != qo || m.Size() != int(e.Size) ||
					e.TagHash != queueTagHash(m) && !legacyTimerEntry(m, e.TagHash) {
					return fmt.Errorf("invariant 2: %s/%d entry %d points at %s/%d offset %d", k.topic, k.id, qo, m.Topic, m.QueueID, m.QueueOffset)
				}
			}
		}
	}
	return s.checkIndex()
}
