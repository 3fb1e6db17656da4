package tracerecord

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

const (
	flushEvery = 100 * time.Millisecond
	// batchBytes bounds one trace message (the clients use about 118 KB).
	batchBytes = 64 << 10
	// keyBytes bounds one trace message's KEYS (a message's properties are at most 32 KiB).
	keyBytes = 16 << 10
	// queueLen bounds records waiting to be written; when it is full records are dropped (and counted), never the
	// consumption.
	queueLen = 8192
)

// Sender sends one trace message (the official client's producer implements it).
type Sender interface {
	SendSync(ctx context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error)
}

type record struct {
	data string
	keys []string
}

// Writer batches records into messages on Topic, keyed so a query by any of a record's keys finds it (what the
// clients' trace dispatcher does). Add never blocks: records beyond the queue are dropped and counted. Close
// writes what is queued and stops.
type Writer struct {
	send    Sender
	timeout time.Duration
	log     *slog.Logger
	records chan record
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	dropped atomic.Int64
}

// NewWriter starts a writer sending through s, each send bounded by timeout.
func NewWriter(s Sender, timeout time.Duration, log *slog.Logger) *Writer {
	if log == nil {
		log = slog.Default()
	}
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	w := &Writer{send: s, timeout: timeout, log: log, records: make(chan record, queueLen), stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// Add queues one record (BeforeRecord, AfterRecord) with the keys it is found by: the message's id, its keys and,
// for tide's records, the event id.
func (w *Writer) Add(data string, keys ...string) {
	select {
	case <-w.stop:
		return
	default:
	}
	select {
	case w.records <- record{data: data, keys: keys}:
	default:
		if w.dropped.Add(1)%1000 == 1 {
			w.log.Warn("message trace records dropped: the writer is behind", "dropped", w.dropped.Load())
		}
	}
}

// Dropped is how many records Add dropped.
func (w *Writer) Dropped() int64 { return w.dropped.Load() }

// Close writes the queued records and stops the writer. Safe to call more than once.
func (w *Writer) Close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

func (w *Writer) run() {
	defer close(w.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	var body []byte
	keys := map[string]struct{}{}
	kb, failures := 0, 0
	flush := func() {
		if len(body) == 0 {
			return
		}
		ks := make([]string, 0, len(keys))
		for k := range keys {
			ks = append(ks, k)
		}
		msg := primitive.NewMessage(Topic, body).WithKeys(ks)
		ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
		if _, err := w.send.SendSync(ctx, msg); err != nil {
			// Lost records only thin out the trace; consumption goes on. Log the first failure of a run and every
			// 100th after it, not every flush while the broker is away.
			if failures++; failures%100 == 1 {
				w.log.Warn("writing message trace records failed; they are dropped", "err", err, "failures", failures)
			}
		} else {
			failures = 0
		}
		cancel()
		body = nil
		clear(keys)
		kb = 0
	}
	take := func(r record) {
		body = append(body, r.data...)
		for _, k := range r.keys {
			if _, ok := keys[k]; !ok && k != "" {
				keys[k] = struct{}{}
				kb += len(k) + 1
			}
		}
		if len(body) >= batchBytes || kb >= keyBytes {
			flush()
		}
	}
	for {
		select {
		case r := <-w.records:
			take(r)
		case <-t.C:
			flush()
		case <-w.stop:
			for {
				select {
				case r := <-w.records:
					take(r)
				default:
					flush()
					return
				}
			}
		}
	}
}
