package server_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/tide-run/tide/internal/promtest"
	"github.com/tide-run/tide/server"
)

// TestMetricsCountTraffic scrapes tide up's /metrics (API port, anonymous on loopback) with Prometheus' parser
// while real traffic flows: n events posted to a Broker's ingress reach a Knative Service (a real process) through
// a Trigger, and m more requests go straight to the Service through the gateway. Every counter is asserted to move
// by exactly what was sent.
func TestMetricsCountTraffic(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := newPlatform(t, server.Options{DataDir: dir,
		Serving:  server.ServingOptions{BuildCacheDir: filepath.Join(dir, "build"), SourceDir: root},
		Eventing: server.EventingOptions{StatsInterval: 100 * time.Millisecond}})
	url := p.srv.APIURL() + server.MetricsPath
	eventually(t, 15*time.Second, func() error {
		if !p.srv.Ready() {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	f := promtest.MustScrape(t, url, nil)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "tide_mq_connections", "rocketmq_storage_size"} {
		if !f.Has(name, nil) {
			t.Errorf("no %s on /metrics at start; have %v", name, f.Names())
		}
	}
	p.apply(`
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: conf}
spec:
  template:
    spec:
      containers: [{image: "ko://github.com/tide-run/tide/test/apps/conformance"}]
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: to-service}
spec:
  broker: default
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: conf}, uri: /status/200}
`)
	p.waitReadyWithin("ksvc", "conf", "120s")
	p.waitReady("trigger", "to-service")
	brokerTopic := map[string]string{"topic": "tide-broker-default_default", "message_type": "normal"}
	before := promtest.MustScrape(t, url, nil)
	in0, _ := before.Value("rocketmq_messages_in_total", brokerTopic)
	rev := map[string]string{"namespace_name": "default", "service_name": "conf", "configuration_name": "conf",
		"revision_name": "conf-00001", "response_code": "200", "response_code_class": "2xx"}
	req0, _ := before.Value("revision_request_count", rev)

	const n, m = 10, 7
	for i := range n {
		if code := p.postEvent("/default/default", fmt.Sprint("metered-", i), "t", "/s", `{"n":1}`); code != 202 {
			t.Fatalf("post: %d", code)
		}
	}
	ingress := map[string]string{"namespace_name": "default", "broker_name": "default", "response_code": "202", "response_code_class": "2xx"}
	promtest.WaitValue(t, url, nil, "mt_broker_ingress_event_count", ingress, n, 10*time.Second)
	filter := map[string]string{"namespace_name": "default", "broker_name": "default", "trigger_name": "to-service", "response_code": "200"}
	f = promtest.WaitValue(t, url, nil, "mt_broker_filter_event_count", filter, n, 60*time.Second)
	if v, _ := f.Value("mt_broker_filter_event_dispatch_latencies", filter); v != n {
		t.Errorf("mt_broker_filter_event_dispatch_latencies count = %v, want %d", v, n)
	}
	if v, _ := f.Value("mt_broker_ingress_event_dispatch_latencies", ingress); v != n {
		t.Errorf("mt_broker_ingress_event_dispatch_latencies count = %v, want %d", v, n)
	}
	if v, _ := f.Value("tide_trigger_events_total", map[string]string{"namespace": "default", "trigger": "to-service", "result": "delivered"}); v != n {
		t.Errorf("tide_trigger_events_total{result=delivered} = %v, want %d", v, n)
	}
	if v, _ := f.Value("tide_broker_events_total", map[string]string{"namespace": "default", "broker": "default", "result": "accepted"}); v != n {
		t.Errorf("tide_broker_events_total{result=accepted} = %v, want %d", v, n)
	}
	if v, _ := f.Value("rocketmq_messages_in_total", brokerTopic); v-in0 != n {
		t.Errorf("rocketmq_messages_in_total{topic=tide-broker-default_default} rose by %v, want %d", v-in0, n)
	}

	// m requests straight to the Service through the gateway: the revision's request count rises by n + m (the
	// Trigger's deliveries went through the gateway too).
	gw := p.endpoint("gateway")
	for range m {
		req, _ := http.NewRequest(http.MethodGet, gw+"/status/200", nil)
		req.Host = "conf.default.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET through the gateway: %d", resp.StatusCode)
		}
	}
	f = promtest.WaitValue(t, url, nil, "revision_request_count", rev, req0+n+m, 10*time.Second)
	if v, _ := f.Value("revision_request_latencies", rev); v != req0+n+m {
		t.Errorf("revision_request_latencies count = %v, want %v", v, req0+n+m)
	}
	revOnly := map[string]string{"namespace_name": "default", "revision_name": "conf-00001"}
	for _, name := range []string{"autoscaler_desired_pods", "autoscaler_actual_pods", "revision_queue_depth", "tide_revision_requests_in_flight"} {
		if !f.Has(name, revOnly) {
			t.Errorf("no %s for conf-00001", name)
		}
	}
	if v, _ := f.Value("autoscaler_actual_pods", revOnly); v < 1 {
		t.Errorf("autoscaler_actual_pods = %v, want >= 1 while requests were served", v)
	}
	// The Trigger's consumer group is lag-free once it has committed what it delivered.
	group := map[string]string{"topic": "tide-broker-default_default"}
	if !f.Has("rocketmq_consumer_lag_messages", group) {
		t.Errorf("no rocketmq_consumer_lag_messages for the Broker's topic")
	}
}

// TestMetricsNeedTheTokenWhereRequired: with --require-token, /metrics is 401 without the API token and served
// with it as a bearer token (how Prometheus' authorization.credentials_file sends it).
func TestMetricsNeedTheTokenWhereRequired(t *testing.T) {
	p := newPlatform(t, server.Options{RequireToken: true})
	url := p.srv.APIURL() + server.MetricsPath
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /metrics without the token: %d, want 401", resp.StatusCode)
	}
	f := promtest.MustScrape(t, url, http.Header{"Authorization": {"Bearer " + p.srv.Access().Token}})
	if !f.Has("go_goroutines", nil) {
		t.Errorf("no go_goroutines with the token: %v", f.Names())
	}
}
