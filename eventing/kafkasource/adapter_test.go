package kafkasource

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tide-run/tide/apis/sources/v1beta1"
	"github.com/tide-run/tide/eventing/delivery"
	"github.com/tide-run/tide/internal/kafkatest"
)

// End-to-end tests against the real Apache Kafka (KRaft, from Maven Central's jars on this machine's JVM; see
// internal/kafkatest), franz-go producing, real HTTP sinks. One Kafka serves all subtests (a JVM start costs
// seconds); each subtest uses its own topic and consumer group.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// recordingSink is a real HTTP receiver; decide returns the status of the n-th request (from 1).
type recordingSink struct {
	mu     sync.Mutex
	ok     map[string]int // event data -> 2xx answers
	events map[string]cloudevents.Event
	order  map[string][]string // partition -> data in the order accepted
	calls  atomic.Int64
	decide func(ev cloudevents.Event, n int64) int
	url    *url.URL
}

func newSink(t *testing.T, decide func(ev cloudevents.Event, n int64) int) *recordingSink {
	s := &recordingSink{ok: map[string]int{}, events: map[string]cloudevents.Event{}, order: map[string][]string{}, decide: decide}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			w.WriteHeader(400)
			return
		}
		n := s.calls.Add(1)
		code := 202
		if s.decide != nil {
			code = s.decide(*ev, n)
		}
		if code < 300 {
			s.mu.Lock()
			d := string(ev.Data())
			s.ok[d]++
			s.events[d] = *ev
			p, _ := ev.Extensions()[ExtPartition].(string)
			s.order[p] = append(s.order[p], d)
			s.mu.Unlock()
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	s.url, _ = url.Parse(srv.URL)
	return s
}

// counts returns how many distinct payloads were accepted and how many acceptances were repeats.
func (s *recordingSink) counts() (unique, dups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.ok {
		unique++
		dups += n - 1
	}
	return unique, dups
}

func (s *recordingSink) missing(payloads []string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range payloads {
		if s.ok[p] == 0 {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, d time.Duration, what func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := what()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, msg)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// produce writes n records to topic round-robin over its partitions, payload "<topic>-<i>", keyed and with a
// header, and returns the payloads.
func produce(t *testing.T, cl *kgo.Client, topic string, from, n int) []string {
	t.Helper()
	var recs []*kgo.Record
	var out []string
	for i := from; i < from+n; i++ {
		p := fmt.Sprintf("%s-%d", topic, i)
		out = append(out, p)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i)), Value: []byte(p),
			Headers: []kgo.RecordHeader{{Key: "X-Seq", Value: []byte(strconv.Itoa(i))}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return out
}

func startAdapter(t *testing.T, k *kafkatest.Kafka, cfg Config) *Adapter {
	t.Helper()
	a := newAdapter(t, k, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start: %v (status %+v)", err, a.Status())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	return a
}

func newAdapter(t *testing.T, k *kafkatest.Kafka, cfg Config) *Adapter {
	t.Helper()
	cfg.BootstrapServers = []string{k.Bootstrap}
	if cfg.SourceName == "" {
		cfg.SourceNamespace, cfg.SourceName = "ns", "src"
	}
	if cfg.InitialOffset == "" {
		cfg.InitialOffset = v1beta1.OffsetEarliest
	}
	if cfg.RetryPause == 0 {
		cfg.RetryPause = 50 * time.Millisecond
	}
	cfg.Logger = quiet
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func coinFlip(seed int64) func(cloudevents.Event, int64) int {
	var mu sync.Mutex
	rnd := rand.New(rand.NewSource(seed))
	return func(cloudevents.Event, int64) int {
		mu.Lock()
		defer mu.Unlock()
		if rnd.Intn(2) == 0 {
			return 500
		}
		return 202
	}
}

func TestAgainstApacheKafka(t *testing.T) {
	k := kafkatest.Start(t)
	producer := k.Client(t, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))

	// Every record produced reaches the sink exactly once (nothing failed, nothing restarted), with Knative's
	// CloudEvent attributes.
	t.Run("delivers every record", func(t *testing.T) {
		k.CreateTopic(t, "all", 3)
		sent := produce(t, producer, "all", 0, 300)
		for _, ordered := range []bool{true, false} {
			sink := newSink(t, nil)
			a := startAdapter(t, k, Config{Topics: []string{"all"}, ConsumerGroup: fmt.Sprintf("g-all-%v", ordered),
				Ordered: ordered, Sink: sink.url, Overrides: map[string]string{"team": "blue"}})
			waitFor(t, 60*time.Second, func() string {
				if m, c := sink.missing(sent), a.Counters(); m > 0 || c.Delivered < int64(len(sent)) {
					return fmt.Sprintf("ordered=%v: %d of %d not delivered (counters %+v)", ordered, m, len(sent), c)
				}
				return ""
			})
			if u, d := sink.counts(); u != len(sent) || d != 0 {
				t.Fatalf("ordered=%v: %d distinct events, %d duplicates; want %d and 0", ordered, u, d, len(sent))
			}
			if c := a.Counters(); c.Delivered != int64(len(sent)) || c.Retried != 0 {
				t.Fatalf("counters %+v", c)
			}
			if ordered {
				// Per partition, the sink saw the records in offset order.
				sink.mu.Lock()
				for p, ds := range sink.order {
					last := -1
					for _, d := range ds {
						var i int
						fmt.Sscanf(d, "all-%d", &i)
						if i <= last {
							t.Errorf("partition %s out of order: %v", p, ds)
							break
						}
						last = i
					}
				}
				sink.mu.Unlock()
			}
			sink.mu.Lock()
			ev := sink.events["all-7"]
			sink.mu.Unlock()
			p, _ := ev.Extensions()[ExtPartition].(string)
			o, _ := ev.Extensions()[ExtOffset].(string)
			want := map[string]string{"type": "dev.knative.kafka.event", "source": "/apis/v1/namespaces/ns/kafkasources/src#all",
				"subject": "partition:" + p + "#" + o, "id": "partition:" + p + "/offset:" + o}
			got := map[string]string{"type": ev.Type(), "source": ev.Source(), "subject": ev.Subject(), "id": ev.ID()}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			ext := ev.Extensions()
			if ext["key"] != "k7" || ext["partitionkey"] != "k7" || ext["kafkaheaderxseq"] != "7" || ext["team"] != "blue" || p == "" || o == "" {
				t.Errorf("extensions %v", ext)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = a.Stop(ctx)
			cancel()
		}
	})

	// The sink fails half its requests at random. Every record ends delivered or dead-lettered, counted exactly;
	// without a dead-letter sink (or with one failing half the time too) a record stays uncommitted and is tried
	// again in place until accepted. Nothing is lost; nothing restarts here, so nothing is accepted twice.
	t.Run("sink failing half its requests", func(t *testing.T) {
		k.CreateTopic(t, "half", 4)
		sent := produce(t, producer, "half", 0, 200)
		t.Run("with dead-letter sink", func(t *testing.T) {
			sink, dls := newSink(t, coinFlip(1)), newSink(t, nil)
			a := startAdapter(t, k, Config{Topics: []string{"half"}, ConsumerGroup: "g-half-dls", Sink: sink.url,
				Delivery: delivery.Spec{Retry: 1, DeadLetter: dls.url}})
			waitFor(t, 60*time.Second, func() string {
				if c := a.Counters(); c.Delivered+c.DeadLettered < int64(len(sent)) {
					return fmt.Sprintf("counters %+v of %d", c, len(sent))
				}
				return ""
			})
			c := a.Counters()
			su, sd := sink.counts()
			du, dd := dls.counts()
			if c.Delivered+c.DeadLettered != int64(len(sent)) || c.Retried != 0 || c.DeadLettered == 0 || c.Delivered == 0 ||
				int64(su) != c.Delivered || int64(du) != c.DeadLettered || sd != 0 || dd != 0 {
				t.Fatalf("counters %+v; sink %d (+%d dups), dead-letter sink %d (+%d dups); %d records", c, su, sd, du, dd, len(sent))
			}
			lost := 0
			sink.mu.Lock()
			dls.mu.Lock()
			for _, p := range sent {
				if sink.ok[p] == 0 && dls.ok[p] == 0 {
					lost++
				}
			}
			for p, ev := range dls.events {
				if ev.Extensions()["knativeerrorcode"] == nil || ev.Extensions()["knativeerrordest"] == nil {
					t.Errorf("dead letter %s lacks knativeerror extensions", p)
				}
			}
			dls.mu.Unlock()
			sink.mu.Unlock()
			if lost > 0 {
				t.Fatalf("%d records lost", lost)
			}
		})
		t.Run("without dead-letter sink", func(t *testing.T) {
			sink := newSink(t, coinFlip(2))
			a := startAdapter(t, k, Config{Topics: []string{"half"}, ConsumerGroup: "g-half-none", Sink: sink.url, Ordered: false})
			waitFor(t, 60*time.Second, func() string {
				if m, c := sink.missing(sent), a.Counters(); m > 0 || c.Delivered < int64(len(sent)) {
					return fmt.Sprintf("%d of %d not delivered yet (counters %+v)", m, len(sent), c)
				}
				return ""
			})
			c := a.Counters()
			if u, d := sink.counts(); u != len(sent) || d != 0 || c.Delivered != int64(len(sent)) || c.Retried == 0 {
				t.Fatalf("sink %d distinct (+%d dups), counters %+v; want %d, 0 dups, some retried", u, d, c, len(sent))
			}
		})
		t.Run("dead-letter sink failing half the time too", func(t *testing.T) {
			sink, dls := newSink(t, coinFlip(3)), newSink(t, coinFlip(4))
			a := startAdapter(t, k, Config{Topics: []string{"half"}, ConsumerGroup: "g-half-both", Sink: sink.url, Ordered: true,
				Delivery: delivery.Spec{DeadLetter: dls.url}})
			waitFor(t, 60*time.Second, func() string {
				if c := a.Counters(); c.Delivered+c.DeadLettered < int64(len(sent)) {
					return fmt.Sprintf("counters %+v of %d", c, len(sent))
				}
				return ""
			})
			c := a.Counters()
			su, sd := sink.counts()
			du, dd := dls.counts()
			if c.Delivered == 0 || c.DeadLettered == 0 || c.Retried == 0 || int64(su+du) != int64(len(sent)) || sd+dd != 0 {
				t.Fatalf("counters %+v, sink %d, dead-letter sink %d, dups %d: every path should be taken, each record once", c, su, du, sd+dd)
			}
		})
	})

	// tide stops mid-stream (the sink stalls after ~60 records, so deliveries are under way and records wait); more
	// records are produced meanwhile; a new adapter in the same group
	// delivers the rest. Ordered: the stop commits exactly the finished records, so every record arrives exactly
	// once. Unordered: a record finished after an earlier unfinished one of its partition is delivered again
	// (at-least-once), and only those.
	for _, ordered := range []bool{true, false} {
		t.Run(fmt.Sprintf("restarted mid-stream ordered=%v", ordered), func(t *testing.T) {
			topic := fmt.Sprintf("restart-%v", ordered)
			k.CreateTopic(t, topic, 2)
			sent := produce(t, producer, topic, 0, 200)
			var stall atomic.Bool
			stall.Store(true)
			sink := newSink(t, func(_ cloudevents.Event, n int64) int {
				if stall.Load() && n > 60 {
					return 503
				}
				return 202
			})
			cfg := Config{Topics: []string{topic}, ConsumerGroup: "g-" + topic, Sink: sink.url, Ordered: ordered, MaxInFlight: 8}
			a1 := startAdapter(t, k, cfg)
			waitFor(t, 30*time.Second, func() string {
				if c := a1.Counters(); c.Delivered < 60 || c.Retried == 0 {
					return fmt.Sprintf("first run: counters %+v", c)
				}
				return ""
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := a1.Stop(ctx); err != nil {
				t.Fatalf("stop: %v", err)
			}
			cancel()
			first, _ := sink.counts()
			sink.mu.Lock()
			firstRun := make(map[string]bool, len(sink.ok))
			for p := range sink.ok {
				firstRun[p] = true
			}
			sink.mu.Unlock()
			// More records arrive while tide is down.
			sent = append(sent, produce(t, producer, topic, 200, 50)...)
			stall.Store(false)
			a2 := startAdapter(t, k, cfg)
			waitFor(t, 60*time.Second, func() string {
				if m := sink.missing(sent); m > 0 {
					return fmt.Sprintf("after the restart %d of %d missing (counters %+v)", m, len(sent), a2.Counters())
				}
				return ""
			})
			u, dups := sink.counts()
			if u != len(sent) {
				t.Fatalf("%d distinct records delivered, want %d", u, len(sent))
			}
			if ordered && dups != 0 {
				t.Fatalf("ordered: %d records delivered twice after a clean stop (first run finished %d)", dups, first)
			}
			// At-least-once, precisely: a record is delivered twice only if the first run delivered it (it finished
			// after an earlier record of its partition that did not, so its offset could not be committed), and
			// never more than twice.
			sink.mu.Lock()
			for p, n := range sink.ok {
				if n > 2 || (n == 2 && !firstRun[p]) {
					t.Errorf("%s delivered %d times (first run delivered it: %v)", p, n, firstRun[p])
				}
			}
			sink.mu.Unlock()
			t.Logf("first run delivered %d; after the restart all %d, %d twice", first, len(sent), dups)
		})
	}

	t.Run("start reports reasons", func(t *testing.T) {
		sink := newSink(t, nil)
		a := newAdapter(t, k, Config{Topics: []string{"does-not-exist"}, ConsumerGroup: "g-missing", Sink: sink.url})
		err := a.Start(context.Background())
		if st := a.Status(); err == nil || st.Reason != v1beta1.ReasonTopicNotFound || !st.Connected || st.Deployed {
			t.Fatalf("missing topic: err %v status %+v", err, st)
		}
		_ = a.Stop(context.Background())
		b, err := New(Config{SourceNamespace: "ns", SourceName: "s", BootstrapServers: []string{"127.0.0.1:1"}, Topics: []string{"x"},
			ConsumerGroup: "g", Sink: sink.url, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		err = b.Start(context.Background())
		if st := b.Status(); err == nil || st.Reason != v1beta1.ReasonBrokersUnreachable || st.Connected {
			t.Fatalf("unreachable: err %v status %+v", err, st)
		}
		_ = b.Stop(context.Background())
	})

	// initialOffset latest: records produced before the source started are skipped, and records produced after
	// its start but before its consumer joined are not (the initial offsets were committed at Start).
	t.Run("initial offset latest", func(t *testing.T) {
		k.CreateTopic(t, "latest", 1)
		produce(t, producer, "latest", 0, 10)
		sink := newSink(t, nil)
		a := startAdapter(t, k, Config{Topics: []string{"latest"}, ConsumerGroup: "g-latest", InitialOffset: v1beta1.OffsetLatest, Sink: sink.url})
		later := produce(t, producer, "latest", 10, 5)
		waitFor(t, 30*time.Second, func() string {
			if m := sink.missing(later); m > 0 {
				return fmt.Sprintf("%d of the later records missing (counters %+v)", m, a.Counters())
			}
			return ""
		})
		if u, _ := sink.counts(); u != len(later) {
			t.Fatalf("delivered %d, want only the %d produced after the start", u, len(later))
		}
	})
}
