package store

import (
	"errors"
	"slices"
	"strings"

	"github.com/tide-run/tide/mq/internal/commitlog"
	"github.com/tide-run/tide/mq/message"
)

// QueryMaxNum caps how many messages one QUERY_MESSAGE returns (Java's maxMsgsNumBatch).
const QueryMaxNum = 64

// queryMaxBytes caps the bytes of one answer (a frame is at most 16 MiB); the first message is always returned.
const queryMaxBytes = 8 << 20

// QueryMessage returns the stored records of topic that carry key, stored in [begin, end] ms: the newest maxNum
// (capped at QueryMaxNum) and about 8 MiB of them, oldest first (Java's order). With uniq the key is a message id (UNIQ_KEY) and only a record with
// that id matches; otherwise key is one word of KEYS (or the message id: both are indexed, as in Java). Every
// candidate from the index is read back and checked, so a hash collision never returns another message.
func (s *Store) QueryMessage(topic, key string, maxNum int, begin, end int64, uniq bool) ([][]byte, IndexStats, error) {
	st := s.idx.stats()
	if maxNum <= 0 || maxNum > QueryMaxNum {
		maxNum = QueryMaxNum
	}
	if key == "" || topic == "" {
		return nil, st, nil
	}
	// Ask for a few more than wanted: collisions are dropped below.
	cand, err := s.idx.lookup(topic, key, maxNum+8, begin, end)
	if err != nil && len(cand) == 0 {
		return nil, st, err
	}
	var out [][]byte
	size := 0
	logMin := s.cl.MinOffset()
	seen := make(map[int64]bool, len(cand))
	for _, pos := range cand {
		if seen[pos] {
			continue // a message whose KEYS repeat a word has one entry per repetition
		}
		seen[pos] = true
		if len(out) >= maxNum || (size > 0 && size >= queryMaxBytes) {
			break
		}
		if pos < logMin {
			continue
		}
		m, raw, err := s.cl.ReadMessage(pos)
		if err != nil {
			if errors.Is(err, commitlog.ErrOutOfRange) {
				continue // removed by retention meanwhile
			}
			return out, st, err
		}
		if m.Topic != topic || !hasKey(m.Properties, key, uniq) {
			continue
		}
		out = append(out, raw)
		size += len(raw)
	}
	// As Java's DefaultMessageStore: the newest maxNum matches, answered in commit-log order (oldest first).
	slices.Reverse(out)
	return out, st, nil
}

func hasKey(props, key string, uniq bool) bool {
	if message.Property(props, message.PropUniqKey) == key {
		return true
	}
	if uniq {
		return false
	}
	for _, k := range strings.Split(message.Property(props, message.PropKeys), " ") {
		if k == key {
			return true
		}
	}
	return false
}

// IndexStats reports where the message index stands.
func (s *Store) IndexStats() IndexStats { return s.idx.stats() }
