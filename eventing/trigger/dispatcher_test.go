package trigger

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"

	"github.com/tide-run/tide/eventing/binding"
	"github.com/tide-run/tide/eventing/bus"
	"github.com/tide-run/tide/eventing/delivery"
	"github.com/tide-run/tide/eventing/filter"
	"github.com/tide-run/tide/eventing/ingress"
)

// These tests drive the dispatcher's decision logic directly with scripted
// Sender results. The end-to-end tests (e2e_test.go) run the same code with
// the real delivery Sender, HTTP subscribers and a real broker.

type scriptedSender struct {
	mu    sync.Mutex
	res   DeliveryResult
	got   []event.Event
	specs []DeliverySpec
}

func (s *scriptedSender) Send(_ context.Context, _ *url.URL, ev event.Event, spec DeliverySpec) DeliveryResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, ev)
	s.specs = append(s.specs, spec)
	return s.res
}

type recordingPublisher struct {
	mu   sync.Mutex
	got  []event.Event
	errs error
}

func (p *recordingPublisher) Publish(_ context.Context, ns, broker string, e event.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.errs != nil {
		return p.errs
	}
	p.got = append(p.got, e)
	return nil
}

func newDispatcher(t *testing.T, s Sender, p Publisher, filters []eventingv1.SubscriptionsAPIFilter) (*dispatcher, context.CancelFunc) {
	t.Helper()
	f, err := filter.Compile(nil, filters)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &dispatcher{sender: s, publisher: p, stats: &counters{}, ctx: ctx, log: discardLogger()}
	sub, _ := url.Parse("http://127.0.0.1:1/")
	d.rc.Store(&runtimeConfig{cfg: Config{Namespace: "default", Name: "t", Broker: "b", Topic: "x", Subscriber: sub}, filter: f})
	return d, cancel
}

func message(t *testing.T, typ string, ttl int) *bus.Message {
	t.Helper()
	e := event.New()
	e.SetID("1")
	e.SetSource("/s")
	e.SetType(typ)
	e.SetExtension(ingress.TTLExtension, ttl)
	body, props, err := binding.Encode(&e)
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Message{Body: body, Properties: props}
}

func TestDispatcherDelivered(t *testing.T) {
	s := &scriptedSender{res: DeliveryResult{Outcome: Delivered, Attempts: 3, StatusCode: 202}}
	d, cancel := newDispatcher(t, s, &recordingPublisher{}, nil)
	defer cancel()
	if a := d.handle(context.Background(), message(t, "a", 10)); a != bus.Ack {
		t.Fatal("want Ack")
	}
	if _, ok := s.got[0].Extensions()[ingress.TTLExtension]; ok {
		t.Fatal("knativebrokerttl must not reach the subscriber")
	}
	if !s.specs[0].PreferReply {
		t.Fatal("Prefer: reply not requested")
	}
	st := d.stats.snapshot()
	if st.Delivered != 1 || st.Retried != 2 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDispatcherFilteredAndDiscarded(t *testing.T) {
	s := &scriptedSender{res: DeliveryResult{Outcome: Delivered}}
	d, cancel := newDispatcher(t, s, &recordingPublisher{}, []eventingv1.SubscriptionsAPIFilter{{Exact: map[string]string{"type": "a"}}})
	defer cancel()
	if d.handle(context.Background(), message(t, "b", 10)) != bus.Ack {
		t.Fatal("filtered event must be acknowledged")
	}
	if d.handle(context.Background(), &bus.Message{Body: []byte("x"), Properties: map[string]string{"TAGS": "t"}}) != bus.Ack {
		t.Fatal("non-CloudEvent must be acknowledged")
	}
	if st := d.stats.snapshot(); st.Filtered != 1 || st.Discarded != 1 || len(s.got) != 0 {
		t.Fatalf("stats %+v sent %d", st, len(s.got))
	}
}

func TestDispatcherDeadLetteredAndFailed(t *testing.T) {
	s := &scriptedSender{res: DeliveryResult{Outcome: DeadLettered, Attempts: 6}}
	d, cancel := newDispatcher(t, s, &recordingPublisher{}, nil)
	if d.handle(context.Background(), message(t, "a", 10)) != bus.Ack {
		t.Fatal("dead-lettered must be acknowledged")
	}
	s.res = DeliveryResult{Outcome: Failed, Attempts: 6, Err: errors.New("boom")}
	if d.handle(context.Background(), message(t, "a", 10)) != bus.Retry {
		t.Fatal("failed must stay in RocketMQ (Retry)")
	}
	st := d.stats.snapshot()
	if st.DeadLettered != 1 || st.Failed != 1 || st.Retried != 10 {
		t.Fatalf("stats %+v", st)
	}
	cancel() // removal: a failure caused by shutdown is not counted as failed
	if d.handle(context.Background(), message(t, "a", 10)) != bus.Retry {
		t.Fatal("want Retry on shutdown")
	}
	if st := d.stats.snapshot(); st.Failed != 1 {
		t.Fatalf("shutdown counted as failure: %+v", st)
	}
}

func TestDispatcherNonRetryableGoesToDLQ(t *testing.T) {
	s := &scriptedSender{res: DeliveryResult{Outcome: Failed, Attempts: 1, StatusCode: 400,
		Err: fmt.Errorf("%w: answered 400", delivery.ErrNotRetryable)}}
	d, cancel := newDispatcher(t, s, &recordingPublisher{}, nil)
	defer cancel()
	if a := d.handle(context.Background(), message(t, "a", 10)); a != bus.DeadLetter {
		t.Fatalf("action %v, want DeadLetter", a)
	}
	// A dead-letter sink that failed too: keep retrying, the sink may recover.
	s.res.Err = fmt.Errorf("%w (%w: boom)", s.res.Err, delivery.ErrDeadLetterFailed)
	if a := d.handle(context.Background(), message(t, "a", 10)); a != bus.Retry {
		t.Fatalf("action %v, want Retry", a)
	}
}

func TestDispatcherReplies(t *testing.T) {
	reply := event.New()
	reply.SetID("r1")
	reply.SetSource("/svc")
	reply.SetType("reply")
	s := &scriptedSender{res: DeliveryResult{Outcome: Delivered, Reply: &reply, StatusCode: 200, Attempts: 1}}
	p := &recordingPublisher{}
	d, cancel := newDispatcher(t, s, p, nil)
	defer cancel()
	if d.handle(context.Background(), message(t, "a", 7)) != bus.Ack {
		t.Fatal("want Ack")
	}
	if len(p.got) != 1 || p.got[0].Extensions()[ingress.TTLExtension] != int32(7) {
		t.Fatalf("reply must carry the original TTL (Publish decrements): %v", p.got)
	}
	p.errs = ingress.ErrTTLExpired
	if d.handle(context.Background(), message(t, "a", 1)) != bus.Ack {
		t.Fatal("a reply ended by TTL is not a reason to redeliver")
	}
	p.errs = ingress.ErrNotStored
	if d.handle(context.Background(), message(t, "a", 7)) != bus.Retry {
		t.Fatal("a reply that could not be stored must redeliver the event")
	}
	st := d.stats.snapshot()
	if st.Replies != 1 || st.RepliesDropped != 1 || st.Delivered != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOrderedFromAnnotations(t *testing.T) {
	for v, want := range map[string]bool{"": false, "unordered": false, "ordered": true} {
		got, err := OrderedFromAnnotations(map[string]string{OrderAnnotation: v})
		if err != nil || got != want {
			t.Fatalf("%q: %v %v", v, got, err)
		}
	}
	if _, err := OrderedFromAnnotations(map[string]string{OrderAnnotation: "sorted"}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatal(err)
	}
	if g := Group("my.ns", "t%1"); g != "tide-trigger-my_ns-t_1" {
		t.Fatal(g)
	}
}
