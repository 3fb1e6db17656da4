package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/tide-run/tide/mq/internal/commitlog"
)

// Deleted topics leave their records in the commit log until retention removes the segments. A topic created
// again under the same name starts its queues at offset 0, so those old records carry the same (topic, queue,
// offset) as new ones. A tombstone remembers, per deleted topic, the log position at its deletion: records of
// that topic below it belong to the earlier incarnation and are never indexed into its queues again, neither by
// crash recovery nor by a rebuild of the queues from the whole log (which would otherwise bring deleted messages
// back). Tombstones are dropped once the log's min offset has passed them.
//
// Invariant: for every topic T with tombstone p, no consume-queue entry of T points below p.

// tombstonesPath holds the tombstones as JSON {topic: position}, written atomically.
func (s *Store) tombstonesPath() string { return filepath.Join(s.opts.Dir, "deleted-topics.json") }

// loadTombstones reads the tombstones at Open; a missing file is none.
func (s *Store) loadTombstones() error {
	b, err := s.opts.FS.ReadFile(s.tombstonesPath())
	if errors.Is(err, fs.ErrNotExist) {
		s.tombs = map[string]int64{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: reading deleted topics: %w", err)
	}
	m := map[string]int64{}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("store: %s is damaged (%w): restore it, or remove it if no topic was deleted and created again since the oldest commit-log segment", s.tombstonesPath(), err)
	}
	s.tombs = m
	return nil
}

// writeTombstonesLocked persists s.tombs (s.mu held).
func (s *Store) writeTombstonesLocked() error {
	b, err := json.Marshal(s.tombs)
	if err != nil {
		return err
	}
	if err := commitlog.WriteFileAtomic(s.opts.FS, s.tombstonesPath(), b); err != nil {
		return fmt.Errorf("store: recording a deleted topic: %w", err)
	}
	return nil
}

// buried reports whether the record of topic at pos belongs to an incarnation of topic that was deleted (s.mu
// held, or during Open).
func (s *Store) buried(topic string, pos int64) bool {
	p, ok := s.tombs[topic]
	return ok && pos < p
}

// pruneTombstones drops tombstones the log's min offset has passed: no record they hide is left.
func (s *Store) pruneTombstones(min int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for t, p := range s.tombs {
		if p <= min {
			delete(s.tombs, t)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return s.writeTombstonesLocked()
}
