package runtime

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/controlplane/store"
	"github.com/tide-run/tide/eventing/bus"
	"github.com/tide-run/tide/eventing/ingress"
	"github.com/tide-run/tide/eventing/trigger"
	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/mqtest"
)

// The prefixes the sweep matches are the ones tide's names are built with.
func TestSweepPrefixesMatchNames(t *testing.T) {
	if g := trigger.GroupOf(trigger.Config{Namespace: "a", Name: "b", UID: "0123456789"}); !strings.HasPrefix(g, triggerGroupPrefix) {
		t.Errorf("trigger group %q does not start with %q", g, triggerGroupPrefix)
	}
	if tp := ingress.TopicFor("a", "b"); !strings.HasPrefix(tp, brokerTopicPrefix) {
		t.Errorf("broker topic %q does not start with %q", tp, brokerTopicPrefix)
	}
}

// sweepEnv is an embedded broker, an admin client on it and a store.
type sweepEnv struct {
	mq  *mq.Server
	adm *admin.Client
	st  *store.Store
	log *slog.Logger
}

func newSweepEnv(t *testing.T) *sweepEnv {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rlog.SetLogLevel("error") // the official client logs at info through logrus; New does the same once
	m := mqtest.RunServer(t, mq.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := admin.Dial(ctx, m.NameServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.Close() })
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "store.db"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &sweepEnv{mq: m, adm: adm, st: st, log: log}
}

func (e *sweepEnv) runtime(t *testing.T, embedded bool, logw io.Writer) *Runtime {
	t.Helper()
	r, err := New(Options{Store: e.st, NameServers: func() []string { return []string{e.mq.NameServerAddr()} },
		GatewayURL: func() string { return "http://127.0.0.1:8080" }, EmbeddedBroker: embedded,
		Logger: slog.New(slog.NewTextHandler(logw, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *sweepEnv) groups(t *testing.T) []string {
	t.Helper()
	g, err := e.adm.Groups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(maps.Keys(g))
}

func (e *sweepEnv) topics(t *testing.T) []string {
	t.Helper()
	tp, err := e.adm.Topics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(maps.Keys(tp))
}

// syncBuffer is an io.Writer safe for the runtime's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sweepFixture creates live objects in the store and, on the broker, their groups and topics, the orphans of
// deleted objects and ended tails, a tail group with a connected consumer, and names the sweep must not touch.
// It returns the names that must be deleted and those that must survive.
func sweepFixture(t *testing.T, e *sweepEnv) (orphanGroups, orphanTopics, keepGroups, keepTopics []string) {
	t.Helper()
	ctx := context.Background()
	put(t, e.st, "eventing.knative.dev/v1", "Broker", "shop", "default", nil)
	put(t, e.st, "eventing.knative.dev/v1", "Trigger", "shop", "orders", nil)
	tr, err := e.st.Get(GKTrigger, "shop", "orders")
	if err != nil {
		t.Fatal(err)
	}
	liveGroup := trigger.GroupOf(trigger.Config{Namespace: "shop", Name: "orders", UID: string(tr.GetUID())})
	liveTopic := ingress.TopicFor("shop", "default")
	// The same Trigger name with another UID: deleted while tide was stopped and created again.
	oldGroup := trigger.Group("shop", "orders") + "-deadbeef"
	goneGroup := trigger.GroupOf(trigger.Config{Namespace: "shop", Name: "gone", UID: "12345678-aaaa"})
	deadTail, liveTail := "tide-tail-ended", "tide-tail-running"
	goneTopic := ingress.TopicFor("shop", "gone")
	for _, g := range []string{liveGroup, oldGroup, goneGroup, deadTail, liveTail, "orders-consumer", "my-source-group"} {
		if err := e.adm.CreateGroup(ctx, mqmeta.GroupConfig{GroupName: g, ConsumeEnable: true, RetryQueueNums: 1, RetryMaxTimes: 16}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tp := range []string{liveTopic, goneTopic, "orders", mqmeta.RetryPrefix + goneGroup, mqmeta.DLQPrefix + goneGroup, mqmeta.RetryPrefix + liveGroup} {
		if err := e.adm.CreateTopic(ctx, tp, 1); err != nil {
			t.Fatal(err)
		}
	}
	// A tail that is still running: a real consumer of the group, connected to the broker.
	b, err := bus.NewRocketMQ(bus.RocketMQOptions{NameServers: []string{e.mq.NameServerAddr()}, Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	sub, err := b.Subscribe(ctx, bus.SubscribeOptions{Topic: liveTopic, Group: liveTail}, func(context.Context, *bus.Message) bus.Action { return bus.Ack })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for len(e.mq.ConsumerIDs(liveTail)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the running tail's consumer never connected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return []string{deadTail, goneGroup, oldGroup}, []string{goneTopic, mqmeta.RetryPrefix + goneGroup},
		[]string{liveGroup, liveTail, "orders-consumer", "my-source-group"},
		[]string{liveTopic, "orders", mqmeta.DLQPrefix + goneGroup, mqmeta.RetryPrefix + liveGroup}
}

func TestStartSweepsOrphansOnTheEmbeddedBroker(t *testing.T) {
	e := newSweepEnv(t)
	orphanGroups, orphanTopics, keepGroups, keepTopics := sweepFixture(t, e)
	logs := &syncBuffer{}
	r := e.runtime(t, true, logs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })

	groups, topics := e.groups(t), e.topics(t)
	for _, g := range orphanGroups {
		if slices.Contains(groups, g) {
			t.Errorf("orphaned group %s survived the sweep", g)
		}
		if !strings.Contains(logs.String(), "group="+g) {
			t.Errorf("no log line for deleted group %s:\n%s", g, logs)
		}
	}
	for _, g := range keepGroups {
		if !slices.Contains(groups, g) {
			t.Errorf("group %s was deleted; groups now %v", g, groups)
		}
	}
	for _, tp := range orphanTopics {
		if slices.Contains(topics, tp) {
			t.Errorf("orphaned topic %s survived the sweep", tp)
		}
	}
	for _, tp := range keepTopics {
		if !slices.Contains(topics, tp) {
			t.Errorf("topic %s was deleted; topics now %v", tp, topics)
		}
	}
	// One line per deleted group or Broker topic (the %RETRY% topic goes with its group).
	if n := strings.Count(logs.String(), `msg="deleted`); n != len(orphanGroups)+1 {
		t.Errorf("%d deletion log lines, want %d:\n%s", n, len(orphanGroups)+1, logs)
	}
}

func TestNoSweepOnAnExternalCluster(t *testing.T) {
	e := newSweepEnv(t)
	sweepFixture(t, e)
	groups, topics := e.groups(t), e.topics(t)
	r := e.runtime(t, false, io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	if got := e.groups(t); !slices.Equal(got, groups) {
		t.Errorf("groups changed without the embedded broker: %v -> %v", groups, got)
	}
	if got := e.topics(t); !slices.Equal(got, topics) {
		t.Errorf("topics changed without the embedded broker: %v -> %v", topics, got)
	}
}

// A store that cannot be read means nothing is known to be live: nothing is deleted.
func TestSweepDeletesNothingWithoutTheStore(t *testing.T) {
	e := newSweepEnv(t)
	sweepFixture(t, e)
	groups, topics := e.groups(t), e.topics(t)
	r := e.runtime(t, true, io.Discard)
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	if res := r.sweepOrphans(context.Background(), []string{e.mq.NameServerAddr()}); len(res.Groups)+len(res.Topics) != 0 {
		t.Errorf("swept %+v with an unreadable store", res)
	}
	if got := e.groups(t); !slices.Equal(got, groups) {
		t.Errorf("groups changed: %v -> %v", groups, got)
	}
	if got := e.topics(t); !slices.Equal(got, topics) {
		t.Errorf("topics changed: %v -> %v", topics, got)
	}
}
