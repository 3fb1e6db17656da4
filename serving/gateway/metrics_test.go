package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/tide-run/tide/internal/metrics"
	"github.com/tide-run/tide/internal/promtest"
	"github.com/tide-run/tide/serving/process"
)

// TestMetricsCountRequestsAndColdStarts: a revision at zero gets a request (a cold start: it waits for the
// instance the stand-in autoscaler starts), then two more (warm). Scraped over HTTP and read with Prometheus'
// parser: three requests with code 200, exactly one cold start with its wait observed, and the revision's series
// gone once it is deleted.
func TestMetricsCountRequestsAndColdStarts(t *testing.T) {
	reg := metrics.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	ms := httptest.NewServer(metrics.Handler(reg, nil))
	defer ms.Close()
	url := ms.URL + "/metrics"

	autoscaler := &scaleOnPoke{pools: map[types.NamespacedName]*process.Pool{}}
	gw := New(Options{Poker: autoscaler})
	gw.SetMetrics(m)
	srv := serve(t, gw)
	p, key := deploy(t, gw, revSpec{name: "svc-00001", cc: 1})
	autoscaler.mu.Lock()
	autoscaler.pools[key] = p
	autoscaler.mu.Unlock()
	if err := gw.SetRoute("default", "svc", []Target{{Revision: "svc-00001", Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if c, _ := get(t, http.DefaultClient, srv, host, "/", nil); c != 200 {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	rev := map[string]string{"namespace_name": "default", "service_name": "svc", "configuration_name": "svc", "revision_name": "svc-00001"}
	ok200 := map[string]string{"revision_name": "svc-00001", "response_code": "200", "response_code_class": "2xx", "service_name": "svc"}
	f := promtest.WaitValue(t, url, nil, "revision_request_count", ok200, 3, 5*time.Second)
	if v, _ := f.Value("revision_request_latencies", ok200); v != 3 {
		t.Errorf("revision_request_latencies count = %v, want 3", v)
	}
	if v, _ := f.Value("tide_revision_cold_starts_total", rev); v != 1 {
		t.Errorf("tide_revision_cold_starts_total = %v, want 1", v)
	}
	if v, _ := f.Value("tide_revision_cold_start_duration_seconds", rev); v != 1 {
		t.Errorf("tide_revision_cold_start_duration_seconds count = %v, want 1", v)
	}
	gw.DeleteRoute("default", "svc")
	gw.DeleteRevision(key)
	f = promtest.MustScrape(t, url, nil)
	if f.Has("revision_request_count", rev) || f.Has("tide_revision_cold_starts_total", rev) {
		t.Error("a deleted revision's series are still exported")
	}
}
