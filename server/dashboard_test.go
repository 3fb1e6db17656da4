package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/store"
	"github.com/tide-run/tide/dashboard"
)

func TestDashboardMountedOnAPIPort(t *testing.T) {
	s, err := New(Options{APIPort: 0, DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	s.AddDashboardMetrics(dashboard.MetricsFunc(func(context.Context) (dashboard.Snapshot, error) {
		return dashboard.Snapshot{Revisions: []dashboard.RevisionStats{{Namespace: "default", Service: "svc",
			Revision: "svc-00001", Requests: 42}}}, nil
	}))
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	get := func(path string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(s.APIURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if code, ct, body := get("/"); code != 200 || !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "<html") {
		t.Fatalf("GET / = %d %s %.200s", code, ct, body)
	}
	// The API's own routes still win over the dashboard at "/" (the reconcilers start right after Start returns:
	// poll for readiness).
	for deadline := time.Now().Add(10 * time.Second); ; {
		code, _, body := get("/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readyz = %d %s", code, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	code, _, body := get("/dashboard/api/state")
	if code != 200 {
		t.Fatalf("state = %d %s", code, body)
	}
	var st struct {
		Samples []dashboard.Sample `json:"samples"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Samples) == 0 || len(st.Samples[0].Services) != 1 || st.Samples[0].Services[0].Name != "svc" {
		t.Fatalf("samples %s", body)
	}
	// The serving runtime's logs back the logs panel; an unknown service has none (not an error).
	if code, _, body := get("/dashboard/api/logs?service=nope"); code != 200 || !strings.Contains(body, `"available":true`) {
		t.Fatalf("logs = %d %s", code, body)
	}
	if s.Dashboard() == nil || !s.Dashboard().Ready() {
		t.Fatal("dashboard not ready after Start")
	}
}

func TestStoreMetricsReadRuntimeStatus(t *testing.T) {
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "s.db"), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	put := func(obj map[string]any) {
		t.Helper()
		u := &unstructured.Unstructured{Object: obj}
		status := obj["status"]
		created, err := st.Create(u)
		if err != nil {
			t.Fatal(err)
		}
		created.Object["status"] = status
		if _, err := st.UpdateStatus(created); err != nil {
			t.Fatal(err)
		}
	}
	put(map[string]any{"apiVersion": "serving.knative.dev/v1", "kind": "Revision",
		"metadata": map[string]any{"name": "order-service-00001", "namespace": "default",
			"labels": map[string]any{"serving.knative.dev/service": "order-service"}},
		"status": map[string]any{"desiredReplicas": int64(3), "actualReplicas": int64(2)}})
	put(map[string]any{"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
		"metadata": map[string]any{"name": "order-service", "namespace": "default"},
		"status":   map[string]any{"deliveryStats": map[string]any{"delivered": int64(10), "retried": int64(2), "deadLettered": int64(1)}}})
	put(map[string]any{"apiVersion": "sources.knative.dev/v1alpha1", "kind": "RocketMQSource",
		"metadata": map[string]any{"name": "orders", "namespace": "default"},
		"status":   map[string]any{}})
	snap, err := storeMetrics{st: st}.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := dashboard.RevisionStats{Namespace: "default", Service: "order-service", Revision: "order-service-00001",
		DesiredInstances: 3, ReadyInstances: 2}
	if len(snap.Revisions) != 1 || snap.Revisions[0] != want {
		t.Fatalf("revisions %+v", snap.Revisions)
	}
	wantD := dashboard.DeliveryStats{Kind: "Trigger", Namespace: "default", Name: "order-service", Delivered: 10,
		Retried: 2, DeadLettered: 1}
	if len(snap.Deliveries) != 1 || snap.Deliveries[0] != wantD {
		t.Fatalf("deliveries %+v", snap.Deliveries)
	}
}

func TestMergeRevisions(t *testing.T) {
	got := mergeRevisions([]dashboard.RevisionStats{
		{Namespace: "a", Service: "s", Revision: "r", DesiredInstances: 2, ReadyInstances: 1},
		{Namespace: "a", Revision: "r", Requests: 7, Concurrency: 1.5},
		{Namespace: "b", Revision: "r"},
	})
	if len(got) != 2 || got[0] != (dashboard.RevisionStats{Namespace: "a", Service: "s", Revision: "r",
		DesiredInstances: 2, ReadyInstances: 1, Requests: 7, Concurrency: 1.5}) {
		t.Fatalf("%+v", got)
	}
}
