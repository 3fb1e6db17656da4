package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/controlplane/api"
	"github.com/tide-run/tide/controlplane/registry"
	"github.com/tide-run/tide/controlplane/store"
)

// TestAgainstTheRealControlPlaneAPI mounts the dashboard at "/" on the real control-plane API handler (as tide up
// does) and checks that what the API serves, lists and watch events alike, reaches the page's stream. Only test code
// imports the control plane: the package itself reads the API over HTTP.
func TestAgainstTheRealControlPlaneAPI(t *testing.T) {
	reg := registry.NewDefault()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "store.db"), Logger: quietLogger(),
		ClusterScoped: func(gk string) bool {
			k, err := reg.ForGroupKind(gk)
			return err == nil && !k.Namespaced
		}})
	if err != nil {
		t.Fatal(err)
	}
	apiServer, err := api.New(api.Options{Registry: reg, Store: st, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(apiServer)
	t.Cleanup(func() { hs.Close(); _ = st.Close() })

	c := clocktesting.NewFakeClock(t0)
	d, err := New(Options{APIURL: func() string { return hs.URL }, Clock: c, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	apiServer.Handle("/", d)
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // before hs.Close (last-in first-out): ends the dashboard's watches and streams
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})

	send := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
		}
	}
	const svcs = "/apis/serving.knative.dev/v1/namespaces/default/services"
	send("POST", svcs, `{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"order"},
		"spec":{"template":{"spec":{"containers":[{"image":"ko://github.com/tide-run/tide/examples/order"}]}}}}`)
	send("POST", "/apis/eventing.knative.dev/v1/namespaces/default/brokers",
		`{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","metadata":{"name":"default"}}`)

	s := openStream(t, hs.URL)
	s.nextNamed(t, "init")
	// The page is served from the same origin as the API.
	if resp, err := http.Get(hs.URL + "/"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET / on the API port: %v %v", resp, err)
	}

	// Nothing reconciles in this test, so the status is ours to write: mark the Service Ready through the status
	// subresource, as the serving reconciler would, and expect the page to hear of it.
	var obj map[string]any
	resp, err := http.Get(hs.URL + svcs + "/order")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&obj)
	resp.Body.Close()
	obj["status"] = map[string]any{"url": "http://order.default.localhost:8080",
		"conditions": []any{map[string]any{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T12:00:00Z"}}}
	b, _ := json.Marshal(obj)
	send("PUT", svcs+"/order/status", string(b))

	// Each clock step yields one sample, preceded by a resources event when the list changed.
	deadline := time.Now().Add(10 * time.Second)
	var last []Resource
	for {
		c.Step(time.Second)
		for {
			name, data := s.next(t)
			if name == "sample" {
				break
			}
			if name == "resources" {
				var r struct{ Items []Resource }
				if err := json.Unmarshal(data, &r); err != nil {
					t.Fatal(err)
				}
				last = r.Items
			}
		}
		svc, broker := find(last, "Service", "order"), find(last, "Broker", "default")
		if svc != nil && svc.Ready == "True" && svc.URL == "http://order.default.localhost:8080" && broker != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream never showed the Ready service and the broker; last: %+v", last)
		}
	}
}
