package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/tide-run/tide/dashboard/dashboardtest"
	"github.com/tide-run/tide/eventing/ingress"
	"github.com/tide-run/tide/internal/apachetest"
	"github.com/tide-run/tide/server"
)

// halfFailing is a sink that fails every other request with 500 and records, in order, the events it accepted.
type halfFailing struct {
	*httptest.Server
	mu       sync.Mutex
	n        int
	accepted []string // event data, in the order first accepted
	seen     map[string]int
}

func newHalfFailing(t *testing.T) *halfFailing {
	h := &halfFailing{seen: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		e, err := binding.ToEvent(req.Context(), cehttp.NewMessageFromHttpRequest(req))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.n++
		if h.n%2 == 1 {
			http.Error(w, "half of the requests fail", http.StatusInternalServerError)
			return
		}
		d := string(e.Data())
		if h.seen[d] == 0 {
			h.accepted = append(h.accepted, d)
		}
		h.seen[d]++
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *halfFailing) snapshot() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.accepted...)
}

// TestEventingOnApache runs tide's eventing on the real Apache RocketMQ (what `tide up --rocketmq-name-servers`
// does): messages produced to Apache reach a sink that fails half its requests through an ordered RocketMQSource
// (all of them, in order) and through a RocketMQSource -> Broker -> Trigger chain (all of them); deleting the
// Trigger deletes its consumer group on Apache, and deleting the Broker its topic.
func TestEventingOnApache(t *testing.T) {
	apache := apachetest.Start(t)
	p := newPlatform(t, server.Options{DataDir: t.TempDir(), RocketMQNameServers: []string{apache.NameServer},
		Eventing: server.EventingOptions{StatsInterval: 100 * time.Millisecond}})
	eventually(t, 30*time.Second, func() error {
		if !p.srv.Ready() {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	mq := func(args ...string) string {
		t.Helper()
		return p.mustRun("", append([]string{"mq", "--namesrv", apache.NameServer}, args...)...)
	}
	mq("topic", "create", "orders", "--queues", "1") // one queue: one total order to keep

	direct, viaBroker := newHalfFailing(t), newHalfFailing(t)
	p.apply(fmt.Sprintf(`
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: all}
spec:
  broker: default
  subscriber: {uri: %s}
  delivery: {retry: 20, backoffPolicy: linear, backoffDelay: PT0.01S}
---
apiVersion: sources.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: ordered}
spec:
  topic: orders
  initialOffset: earliest
  ordering: ordered
  sink: {uri: %s}
  delivery: {retry: 20, backoffPolicy: linear, backoffDelay: PT0.01S}
---
apiVersion: sources.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: to-broker}
spec:
  topic: orders
  initialOffset: earliest
  sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}
`, viaBroker.URL, direct.URL))
	for _, o := range [][2]string{{"broker", "default"}, {"trigger", "all"}, {"rocketmqsource", "ordered"}, {"rocketmqsource", "to-broker"}} {
		p.waitReadyWithin(o[0], o[1], "120s")
	}

	const n = 40
	for i := range n {
		mq("send", "orders", fmt.Sprintf(`{"n":%d}`, i))
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf(`{"n":%d}`, i)
	}
	eventually(t, 120*time.Second, func() error {
		d, b := direct.snapshot(), viaBroker.snapshot()
		if len(d) < n || len(b) < n {
			return fmt.Errorf("accepted %d through the ordered source, %d through the Broker, want %d each", len(d), len(b), n)
		}
		return nil
	})
	if got := direct.snapshot(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the ordered source delivered out of order:\n got  %v\n want %v", got, want)
	}
	if got := viaBroker.snapshot(); len(got) != n {
		t.Errorf("through the Broker: %d distinct events, want %d", len(got), n)
	}

	// The dashboard on the API port charts Apache's topics too: produce counts and each group's lag come from
	// Apache's own stats bodies (GET_CONSUME_STATS and topic stats in fastjson), read through mq/admin.
	t.Run("dashboard", func(t *testing.T) {
		page := dashboardtest.Open(t, p.srv.APIURL()+"/")
		const card = `.topic-card[data-topic="orders"]`
		page.Run(60*time.Second, chromedp.Poll(`(() => {
			const c = document.querySelector('`+card+`');
			if (!c) return false;
			const produced = c.querySelector('path[data-series="produced"]');
			return produced && c.querySelectorAll('path[data-series^="lag:"]').length >= 2; })()`, nil,
			chromedp.WithPollingInterval(200*time.Millisecond)))
		// Everything was consumed, so each source group's lag line comes down to 0 once the clients have committed
		// their offsets (the official client does every 5 s) and the dashboard has sampled Apache's stats again.
		for _, series := range []string{"lag:" + p.sourceGroup("ordered"), "lag:" + p.sourceGroup("to-broker")} {
			deadline := time.Now().Add(60 * time.Second)
			for {
				lag := page.SeriesAt(card, series)
				if len(lag) > 0 && lag[len(lag)-1] == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("the orders card's %s series is %v after 60 s, want a line ending at 0 (everything consumed)", series, lag)
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		var routing int // Apache's cluster- and broker-named routing topics carry no messages: not charted
		page.Eval(`document.querySelectorAll('.topic-card[data-topic="DefaultCluster"], .topic-card[data-topic="broker-a"]').length`, &routing)
		if routing != 0 {
			t.Errorf("%d cards for Apache's routing topics (DefaultCluster, broker-a), want none", routing)
		}
		page.NoProblems()
	})

	groups := func(prefix string) []string { return p.mqGroups(apache.NameServer, prefix) }
	const triggerGroups = "tide-trigger-default-all-"
	if g := groups(triggerGroups); len(g) != 1 {
		t.Fatalf("the Trigger's consumer groups on Apache: %v, want one", g)
	}
	p.mustRun("", "delete", "trigger", "all")
	if g := groups(triggerGroups); len(g) != 0 {
		t.Errorf("the deleted Trigger's group is still on Apache: %v", g)
	}
	topic := ingress.TopicFor("default", "default")
	if l := mq("topic", "list"); !strings.Contains(l, topic) {
		t.Fatalf("the Broker's topic %s is not on Apache:\n%s", topic, l)
	}
	p.mustRun("", "delete", "broker", "default")
	if l := mq("topic", "list"); strings.Contains(l, topic) {
		t.Errorf("the deleted Broker's topic %s is still on Apache:\n%s", topic, l)
	}
}

// sourceGroup is the consumer group a RocketMQSource consumes with (status.consumerGroup).
func (p *platform) sourceGroup(name string) string {
	p.t.Helper()
	st, _ := p.getJSON("rocketmqsource", name)["status"].(map[string]any)
	g, _ := st["consumerGroup"].(string)
	if g == "" {
		p.t.Fatalf("rocketmqsource %s has no status.consumerGroup", name)
	}
	return g
}
