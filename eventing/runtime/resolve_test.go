package runtime

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/tide-run/tide/controlplane/store"
	"github.com/tide-run/tide/eventing/delivery"
)

func newTestRuntime(t *testing.T) *Runtime {
	t.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "store.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	r, err := New(Options{Store: st, NameServers: func() []string { return []string{"127.0.0.1:9876"} },
		GatewayURL: func() string { return "http://127.0.0.1:8080" }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func put(t *testing.T, st *store.Store, apiVersion, kind, ns, name string, status map[string]any) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": ns}}}
	created, err := st.Create(u)
	if err != nil {
		t.Fatal(err)
	}
	if status != nil {
		created.Object["status"] = status
		if _, err := st.UpdateStatus(created); err != nil {
			t.Fatal(err)
		}
	}
}

func TestResolveDestinations(t *testing.T) {
	r := newTestRuntime(t)
	put(t, r.st, "serving.knative.dev/v1", "Service", "shop", "orders", map[string]any{"url": "http://orders.shop.localhost:8080"})
	put(t, r.st, "serving.knative.dev/v1", "Service", "shop", "internal", map[string]any{
		"url": "http://internal.shop.localhost:8080", "address": map[string]any{"url": "http://internal.shop.svc.local:8080"}})
	put(t, r.st, "eventing.knative.dev/v1", "Broker", "shop", "default", map[string]any{"address": map[string]any{"url": "http://127.0.0.1:8080/shop/default"}})
	put(t, r.st, "example.com/v1", "Sink", "other", "custom", map[string]any{"address": map[string]any{"url": "http://custom.example/in"}})
	put(t, r.st, "serving.knative.dev/v1", "Service", "shop", "pending", nil)

	ref := func(apiVersion, kind, ns, name string) *duckv1.KReference {
		return &duckv1.KReference{APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: name}
	}
	rel, _ := apis.ParseURL("/extra/path")
	abs, _ := apis.ParseURL("http://elsewhere.example/x")
	cases := []struct {
		name string
		d    duckv1.Destination
		want string
		err  bool
	}{
		{"service status.url", duckv1.Destination{Ref: ref("serving.knative.dev/v1", "Service", "", "orders")}, "http://orders.shop.localhost:8080", false},
		{"service address wins", duckv1.Destination{Ref: ref("serving.knative.dev/v1", "Service", "", "internal")}, "http://internal.shop.svc.local:8080", false},
		{"broker", duckv1.Destination{Ref: ref("eventing.knative.dev/v1", "Broker", "shop", "default")}, "http://127.0.0.1:8080/shop/default", false},
		{"any addressable in another namespace", duckv1.Destination{Ref: ref("example.com/v1", "Sink", "other", "custom")}, "http://custom.example/in", false},
		{"uri relative to ref", duckv1.Destination{Ref: ref("serving.knative.dev/v1", "Service", "", "orders"), URI: rel}, "http://orders.shop.localhost:8080/extra/path", false},
		{"absolute uri", duckv1.Destination{URI: abs}, "http://elsewhere.example/x", false},
		{"relative uri alone", duckv1.Destination{URI: rel}, "", true},
		{"missing ref", duckv1.Destination{Ref: ref("serving.knative.dev/v1", "Service", "", "nope")}, "", true},
		{"not addressable yet", duckv1.Destination{Ref: ref("serving.knative.dev/v1", "Service", "", "pending")}, "", true},
	}
	for _, c := range cases {
		got, err := r.Resolve("shop", c.d)
		if c.err {
			if !errors.Is(err, ErrUnresolved) {
				t.Errorf("%s: %v, %v; want ErrUnresolved", c.name, got, err)
			}
			continue
		}
		if err != nil || got.String() != c.want {
			t.Errorf("%s: %v, %v; want %s", c.name, got, err, c.want)
		}
	}
}

func TestLocalBrokerOnlyForReadyBrokersOnOurGateway(t *testing.T) {
	r := newTestRuntime(t)
	r.brokers["shop/default"] = "tide-broker-shop_default"
	for raw, want := range map[string]bool{
		"http://127.0.0.1:8080/shop/default":  true,
		"http://127.0.0.1:8080/shop/default/": true,
		"http://127.0.0.1:8080/shop/other":    false, // not a ready Broker: goes over the network (and gets its 404)
		"http://127.0.0.1:9999/shop/default":  false,
		"https://127.0.0.1:8080/shop/default": false,
		"http://127.0.0.1:8080/shop":          false,
	} {
		u, _ := url.Parse(raw)
		if _, _, got := r.localBroker(u); got != want {
			t.Errorf("%s: local %v, want %v", raw, got, want)
		}
	}
}

func TestDialLocalhostReachesTheGateway(t *testing.T) {
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.WriteString(w, req.Host)
	}))
	defer gw.Close()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "store.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := New(Options{Store: st, NameServers: func() []string { return nil }, GatewayURL: func() string { return gw.URL }})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: r.dialLocalhost((&net.Dialer{}).DialContext)}
	defer tr.CloseIdleConnections()
	port := strings.TrimPrefix(gw.URL, "http://127.0.0.1:")
	resp, err := (&http.Client{Transport: tr}).Get("http://order-service.default.localhost:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "order-service.default.localhost:"+port {
		t.Errorf("gateway saw Host %q", b)
	}
}

func TestGatewayFallbackSendsOnlyGatewayHostsToTheIngress(t *testing.T) {
	r := newTestRuntime(t)
	h := r.GatewayFallback()
	for host, want := range map[string]int{
		"127.0.0.1:8080":                  http.StatusServiceUnavailable, // the ingress (not started: 503)
		"localhost:8080":                  http.StatusServiceUnavailable,
		"[::1]:8080":                      http.StatusServiceUnavailable,
		"myhost":                          http.StatusServiceUnavailable,
		"crash.default.localhost:8080":    http.StatusNotFound,
		"hello.default.svc.cluster.local": http.StatusNotFound,
		"hello.default":                   http.StatusNotFound,
	} {
		req := httptest.NewRequest(http.MethodPost, "http://x/default/default", strings.NewReader("{}"))
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", host, rec.Code, want)
		}
	}
}

// TestDeliveriesThroughLocalTransport: the runtime's client is a delivery.Interceptor, so the Sender's lean path
// carries deliveries to Services on *.localhost (through dialLocalhost, with their Host) while a ready local
// Broker's address stays with the in-process short-cut.
func TestDeliveriesThroughLocalTransport(t *testing.T) {
	var hosts []string
	var mu sync.Mutex
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		hosts = append(hosts, req.Host)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer gw.Close()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "store.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := New(Options{Store: st, NameServers: func() []string { return nil }, GatewayURL: func() string { return gw.URL }})
	if err != nil {
		t.Fatal(err)
	}
	r.brokers["shop/default"] = "tide-broker-shop_default"
	tr := delivery.NewTransport()
	tr.DialContext = r.dialLocalhost(tr.DialContext)
	lt := &localTransport{base: tr, r: r}
	var ic delivery.Interceptor = lt
	if ic.Base() != tr {
		t.Fatal("Base is not the wrapped transport")
	}
	port := strings.TrimPrefix(gw.URL, "http://127.0.0.1:")
	broker, _ := url.Parse(gw.URL + "/shop/default")
	svc, _ := url.Parse("http://order-service.default.localhost:" + port + "/")
	if !ic.Intercepts(broker) || ic.Intercepts(svc) {
		t.Fatalf("Intercepts: broker %v, service %v", ic.Intercepts(broker), ic.Intercepts(svc))
	}
	s := delivery.New(delivery.Options{Client: &http.Client{Transport: lt}})
	ev := cloudevents.NewEvent()
	ev.SetID("1")
	ev.SetSource("/s")
	ev.SetType("t")
	for range 2 {
		if res := s.Send(context.Background(), svc, ev, delivery.Spec{}); res.Outcome != delivery.Delivered {
			t.Fatalf("%+v", res)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hosts) != 2 || hosts[0] != svc.Host {
		t.Fatalf("gateway saw %v", hosts)
	}
}
