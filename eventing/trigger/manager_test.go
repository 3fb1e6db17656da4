package trigger

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"

	"github.com/tide-run/tide/eventing/bus"
)

// countingBus records subscriptions; the Manager's bookkeeping (what restarts
// a consumer, what updates in place) does not depend on RocketMQ. The real
// consumer path runs in e2e_test.go.
type countingBus struct {
	mu      sync.Mutex
	subs    []bus.SubscribeOptions
	closed  int
	deleted []string // groups, in order
	// deleteErr is what DeleteGroup answers.
	deleteErr error
}

type countingSub struct{ b *countingBus }

func (s countingSub) Close() error { s.b.mu.Lock(); s.b.closed++; s.b.mu.Unlock(); return nil }

func (b *countingBus) Send(context.Context, *bus.Message) error  { return nil }
func (b *countingBus) EnsureTopic(context.Context, string) error { return nil }
func (b *countingBus) DeleteTopic(context.Context, string) error { return nil }
func (b *countingBus) Close() error                              { return nil }
func (b *countingBus) DeleteGroup(_ context.Context, g string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deleted = append(b.deleted, g)
	return b.deleteErr
}
func (b *countingBus) Subscribe(_ context.Context, o bus.SubscribeOptions, _ bus.Handler) (bus.Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs = append(b.subs, o)
	return countingSub{b}, nil
}

func TestManagerLifecycle(t *testing.T) {
	cb := &countingBus{}
	m, err := NewManager(Options{Bus: cb, Sender: &scriptedSender{}, Publisher: &recordingPublisher{}, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := url.Parse("http://svc.default.example/")
	cfg := Config{Namespace: "default", Name: "t1", Broker: "b", Topic: "topic-b", Subscriber: sub}
	if err := m.Upsert(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if cb.subs[0].Group != "tide-trigger-default-t1" || cb.subs[0].From != bus.FromTime || cb.subs[0].Concurrency != DefaultConcurrency {
		t.Fatalf("subscribe options %+v", cb.subs[0])
	}
	// Filter change: in place, no new consumer.
	cfg.Filters = []eventingv1.SubscriptionsAPIFilter{{Prefix: map[string]string{"type": "a"}}}
	if err := m.Upsert(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if len(cb.subs) != 1 || cb.closed != 0 {
		t.Fatalf("filter change restarted the consumer: subs=%d closed=%d", len(cb.subs), cb.closed)
	}
	// Order change: restart, counters kept.
	m.triggers["default/t1"].stats.delivered.Add(3)
	cfg.Ordered = true
	if err := m.Upsert(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if len(cb.subs) != 2 || cb.closed != 1 || !cb.subs[1].Ordered {
		t.Fatalf("order change: subs=%d closed=%d", len(cb.subs), cb.closed)
	}
	if st, ok := m.Stats("default", "t1"); !ok || st.Delivered != 3 {
		t.Fatalf("stats lost across restart: %+v", st)
	}
	// A new UID (the Trigger was deleted and created again) means a new group.
	cfg.UID = "0f3c2a9e-1111-2222-3333-444455556666"
	if err := m.Upsert(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if len(cb.subs) != 3 || cb.subs[2].Group != "tide-trigger-default-t1-0f3c2a9e" {
		t.Fatalf("uid change: %+v", cb.subs[len(cb.subs)-1])
	}
	// ... and the old group is deleted on the broker; other restarts delete nothing.
	if len(cb.deleted) != 1 || cb.deleted[0] != "tide-trigger-default-t1" {
		t.Fatalf("groups deleted %v, want the pre-UID group once", cb.deleted)
	}
	// Bad config changes nothing and names the field.
	bad := cfg
	bad.Filters = []eventingv1.SubscriptionsAPIFilter{{CESQL: "type ="}}
	if err := m.Upsert(context.Background(), bad); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "spec.filters[0].cesql") {
		t.Fatalf("bad cesql: %v", err)
	}
	bad = cfg
	bad.Subscriber = nil
	if err := m.Upsert(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "spec.subscriber") {
		t.Fatalf("no subscriber: %v", err)
	}
	if len(cb.subs) != 3 {
		t.Fatal("a rejected config touched the consumer")
	}
	if names := m.Names(); len(names) != 1 || names[0] != "default/t1" {
		t.Fatal(names)
	}
	if err := m.Remove("default", "t1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("default", "t1"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, ok := m.Stats("default", "t1"); ok {
		t.Fatal("stats of a removed trigger")
	}
	// Remove keeps the group (the Trigger still exists, e.g. its Broker is not ready); Delete of the stopped
	// Trigger then removes it, once.
	if len(cb.deleted) != 1 {
		t.Fatalf("Remove deleted a group: %v", cb.deleted)
	}
	if err := m.Delete("default", "t1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete("default", "t1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
	if len(cb.deleted) != 2 || cb.deleted[1] != "tide-trigger-default-t1-0f3c2a9e" {
		t.Fatalf("groups deleted %v", cb.deleted)
	}
	_ = m.Close()
	if err := m.Upsert(context.Background(), cfg); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

// TestDeleteGroupFailureDoesNotBlockDelete: the broker refusing to delete the group is logged (one line) and the
// Trigger is deleted anyway; a bus that cannot delete groups at all is not even worth a warning.
func TestDeleteGroupFailureDoesNotBlockDelete(t *testing.T) {
	for _, berr := range []error{errors.New("broker unreachable"), bus.ErrUnsupported} {
		var logs strings.Builder
		cb := &countingBus{deleteErr: berr}
		m, _ := NewManager(Options{Bus: cb, Sender: &scriptedSender{}, Publisher: &recordingPublisher{},
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		sub, _ := url.Parse("http://svc.example/")
		if err := m.Upsert(context.Background(), Config{Namespace: "default", Name: "t1", Broker: "b", Topic: "x", Subscriber: sub}); err != nil {
			t.Fatal(err)
		}
		if err := m.Delete("default", "t1"); err != nil {
			t.Fatalf("%v: Delete: %v", berr, err)
		}
		if len(m.Names()) != 0 || cb.closed != 1 || len(cb.deleted) != 1 {
			t.Fatalf("%v: names %v closed %d deleted %v", berr, m.Names(), cb.closed, cb.deleted)
		}
		lines := strings.Count(logs.String(), "\n")
		if want := map[bool]int{true: 0, false: 1}[errors.Is(berr, bus.ErrUnsupported)]; lines != want ||
			(want == 1 && !strings.Contains(logs.String(), "broker unreachable")) {
			t.Errorf("%v: %d log lines, want %d: %s", berr, lines, want, logs.String())
		}
	}
}

func TestCollector(t *testing.T) {
	m, _ := NewManager(Options{Bus: &countingBus{}, Sender: &scriptedSender{}, Publisher: &recordingPublisher{}, Logger: discardLogger()})
	sub, _ := url.Parse("http://svc.example/")
	if err := m.Upsert(context.Background(), Config{Namespace: "default", Name: "t1", Broker: "b", Topic: "x", Subscriber: sub}); err != nil {
		t.Fatal(err)
	}
	m.triggers["default/t1"].stats.delivered.Add(5)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			key := mf.GetName()
			for _, lp := range mt.GetLabel() {
				key += "," + lp.GetName() + "=" + lp.GetValue()
			}
			got[key] = mt.GetCounter().GetValue() + mt.GetGauge().GetValue()
		}
	}
	if got["tide_trigger_events_total,namespace=default,result=delivered,trigger=t1"] != 5 || len(got) != 10 {
		t.Fatalf("metrics %v", got)
	}
}
