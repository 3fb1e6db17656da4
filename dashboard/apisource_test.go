package dashboard

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func startAPIResources(t *testing.T, opts APIOptions) *APIResources {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	a, err := NewAPIResources(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return a
}

func find(rs []Resource, kind, name string) *Resource {
	for i := range rs {
		if rs[i].Kind == kind && rs[i].Name == name {
			return &rs[i]
		}
	}
	return nil
}

const servicesPath = "/apis/serving.knative.dev/v1/services"

func TestAPIResourcesListsThenFollowsTheWatch(t *testing.T) {
	api := foodDeliveryAPI()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close) // after the source's Shutdown (cleanups run last-in first-out), which ends its watches
	a := startAPIResources(t, APIOptions{BaseURL: srv.URL + "/", RetryInterval: 20 * time.Millisecond})

	var rs []Resource
	poll(t, "the five listed resources", 10*time.Second, func() bool {
		var err error
		rs, err = a.Resources(context.Background())
		return err == nil && len(rs) == 5
	})
	var kinds []string
	for _, r := range rs {
		kinds = append(kinds, r.Kind)
	}
	if got := strings.Join(kinds, ","); got != "Service,Revision,Broker,Trigger,RocketMQSource" {
		t.Errorf("kinds in order %s", got)
	}
	svc := find(rs, "Service", "order")
	if svc.Ready != "True" || svc.URL != "http://order.default.127.0.0.1.sslip.io:8080" || svc.Namespace != "default" {
		t.Errorf("service summary = %+v", svc)
	}
	if rev := find(rs, "Revision", "order-00001"); rev.Service != "order" {
		t.Errorf("revision's service = %q, want order (from the serving.knative.dev/service label)", rev.Service)
	}
	if tr := find(rs, "Trigger", "order-trigger"); !strings.Contains(detailString(tr), "filter=type=dev.tide.order") ||
		!strings.Contains(detailString(tr), "subscriber=Service/order") {
		t.Errorf("trigger details = %s", detailString(tr))
	}
	if src := find(rs, "RocketMQSource", "orders-source"); detailString(src) != "topic=orders group=knative-sources-orders sink=Broker/default" {
		t.Errorf("source details = %s", detailString(src))
	}

	// Watch events apply on top of the list.
	poll(t, "a watch on services", 10*time.Second, func() bool { return api.watchers(servicesPath) > 0 })
	failed := knObject("serving.knative.dev/v1", "Service", "order", "False", "RevisionFailed",
		`Revision "order-00002" failed: exit status 1`, nil)
	api.send(servicesPath, "MODIFIED", failed)
	api.send(servicesPath, "ADDED", knObject("serving.knative.dev/v1", "Service", "payment", "Unknown", "", "", nil))
	poll(t, "the modified and added services", 10*time.Second, func() bool {
		rs, _ = a.Resources(context.Background())
		s := find(rs, "Service", "order")
		return s != nil && s.Ready == "False" && find(rs, "Service", "payment") != nil
	})
	if s := find(rs, "Service", "order"); s.Reason != "RevisionFailed" || !strings.Contains(s.Message, "exit status 1") {
		t.Errorf("not-ready service = %+v", s)
	}
	api.send(servicesPath, "DELETED", failed)
	poll(t, "the deleted service to go", 10*time.Second, func() bool {
		rs, _ = a.Resources(context.Background())
		return find(rs, "Service", "order") == nil && len(rs) == 5
	})

	// An ERROR event ends the watch; the source relists (and the relist is the truth again).
	lists := func() int { api.mu.Lock(); defer api.mu.Unlock(); return api.lists }
	before := lists()
	api.send(servicesPath, "ERROR", map[string]any{"kind": "Status", "code": 410, "reason": "Expired"})
	poll(t, "a relist after the ERROR event", 10*time.Second, func() bool {
		rs, _ = a.Resources(context.Background())
		return lists() > before && find(rs, "Service", "order") != nil && find(rs, "Service", "payment") == nil
	})
}

func detailString(r *Resource) string {
	if r == nil {
		return "<missing>"
	}
	var parts []string
	for _, d := range r.Details {
		parts = append(parts, d.Key+"="+d.Value)
	}
	return strings.Join(parts, " ")
}

func TestAPIResourcesReportsFailuresAndRecovers(t *testing.T) {
	api := foodDeliveryAPI()
	var broken atomic.Bool
	broken.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() && strings.HasSuffix(r.URL.Path, "/services") {
			http.Error(w, "store unavailable", http.StatusInternalServerError)
			return
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := clocktesting.NewFakeClock(t0)
	kinds := append(DefaultKinds(), Kind{"flows.knative.dev", "v1", "sequences", "Sequence"})
	a := startAPIResources(t, APIOptions{BaseURL: srv.URL, Clock: c, Kinds: kinds, Namespaces: []string{"default"}})

	var err error
	var rs []Resource
	poll(t, "the failing collection reported and the healthy ones listed", 10*time.Second, func() bool {
		rs, err = a.Resources(context.Background())
		return err != nil && len(rs) == 4
	})
	if !strings.Contains(err.Error(), "/apis/serving.knative.dev/v1/namespaces/default/services") || !strings.Contains(err.Error(), "store unavailable") {
		t.Errorf("error = %v; want the path and the server's message", err)
	}
	if strings.Contains(err.Error(), "sequences") {
		t.Errorf("a collection the API does not serve (404) is not an error: %v", err)
	}
	if find(rs, "Broker", "default") == nil || find(rs, "Service", "order") != nil {
		t.Errorf("healthy collections still show while one fails: %+v", rs)
	}

	broken.Store(false)
	// The retry waits on the injected clock: step it until the relist succeeds.
	poll(t, "recovery after the API heals", 10*time.Second, func() bool {
		c.Step(time.Second)
		rs, err = a.Resources(context.Background())
		return err == nil && find(rs, "Service", "order") != nil
	})
}

func TestNewAPIResourcesValidates(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8090", "ftp://x", "http://"} {
		if _, err := NewAPIResources(APIOptions{BaseURL: u}); err == nil {
			t.Errorf("BaseURL %q accepted", u)
		} else if u == "" && !errors.Is(err, ErrNoBaseURL) {
			t.Errorf("empty BaseURL: %v", err)
		}
	}
	if p := (Kind{"", "v1", "pods", "Pod"}).path(""); p != "/api/v1/pods" {
		t.Errorf("core all-namespace path = %s", p)
	}
}

func TestSummarize(t *testing.T) {
	raw := []byte(`{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"order","namespace":"default"},
		"status":{"url":"http://order.default.example.com","conditions":[
			{"type":"ConfigurationsReady","status":"True"},
			{"type":"Ready","status":"False","reason":"RevisionMissing","message":"Configuration \"order\" does not have any ready Revision."}],
			"traffic":[{"revisionName":"order-00001","percent":80},{"revisionName":"order-00002","percent":20,"tag":"canary"}]}}`)
	r, err := Summarize(raw, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Ready != "False" || r.Reason != "RevisionMissing" || len(r.Conditions) != 2 {
		t.Errorf("summary = %+v", r)
	}
	if got := detailString(&r); got != "traffic=80% order-00001, 20% order-00002 (canary)" {
		t.Errorf("details = %s", got)
	}
	for _, tc := range []struct{ raw, want string }{
		{`{"kind":"RocketMQSource","metadata":{"name":"orders"},"spec":{"topic":"orders","consumerGroup":"food-delivery-orders",
			"selector":{"type":"TAG","expression":"*"},"sink":{"ref":{"kind":"Broker","name":"default"}}}}`,
			"topic=orders group=food-delivery-orders selector=TAG * sink=Broker/default"},
		{`{"kind":"RocketMQSource","metadata":{"name":"legacy"},"spec":{"topic":"orders","groupName":"g2020",
			"sink":{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","name":"default"}}}`,
			"topic=orders group=g2020 sink=Broker/default"},
		{`{"kind":"RocketMQSource","metadata":{"name":"multi"},"spec":{"topics":["a","b"]},"status":{"consumerGroup":"chosen"}}`,
			"topic=a, b group=chosen"},
	} {
		r, err := Summarize([]byte(tc.raw), "")
		if err != nil || detailString(&r) != tc.want {
			t.Errorf("source details = %q, %v; want %q", detailString(&r), err, tc.want)
		}
	}
	// A fresh object without status still shows, as not-yet-ready ("").
	r, err = Summarize([]byte(`{"metadata":{"name":"default","namespace":"default"},"spec":{"delivery":{"retry":5,"deadLetterSink":{"uri":"http://dls"}}}}`), "Broker")
	if err != nil || r.Kind != "Broker" || r.Ready != "" || detailString(&r) != "retry=5 dead letter=http://dls" {
		t.Errorf("bare broker = %+v, %v", r, err)
	}
	for _, bad := range []string{``, `[]`, `{"metadata":{}}`, `{"metadata":{"name":7}}`} {
		if _, err := Summarize([]byte(bad), "Service"); !errors.Is(err, ErrNotObject) {
			t.Errorf("Summarize(%q) = %v, want ErrNotObject", bad, err)
		}
	}
}

// FuzzSummarize: any bytes from the API either summarize to a named resource or fail with ErrNotObject.
func FuzzSummarize(f *testing.F) {
	f.Add([]byte(`{"kind":"Trigger","metadata":{"name":"t"},"spec":{"broker":"default","filter":{"attributes":{"type":"x"}},"subscriber":{"uri":"http://a"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Summarize(data, "Service")
		if err != nil {
			if !errors.Is(err, ErrNotObject) {
				t.Fatalf("error %v is not ErrNotObject", err)
			}
			return
		}
		if r.Name == "" || r.Kind == "" || r.Conditions == nil || r.Details == nil {
			t.Fatalf("summary %+v lacks name, kind or non-nil lists", r)
		}
	})
}

// FuzzDecodeWatch: any watch stream yields only well-formed events and ends in nil or ErrWatchEvent.
func FuzzDecodeWatch(f *testing.F) {
	f.Add([]byte(`{"type":"ADDED","object":{"metadata":{"name":"a"}}}` + "\n" + `{"type":"DELETED","object":{"metadata":{"name":"a"}}}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := decodeWatch(bytes.NewReader(data), func(typ string, r Resource) {
			if (typ != "ADDED" && typ != "MODIFIED" && typ != "DELETED") || r.Name == "" {
				t.Fatalf("callback with %q %+v", typ, r)
			}
		}, "Service")
		if err != nil && !errors.Is(err, ErrWatchEvent) {
			t.Fatalf("error %v is not ErrWatchEvent", err)
		}
	})
}
