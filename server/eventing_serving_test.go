package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tide-run/tide/server"
)

// TestTriggerToKnativeService runs the seed's last hop with serving: Triggers whose subscriber and dead-letter sink
// are refs to a Knative Service (a real process built from test/apps/conformance, started from zero by the
// gateway), with uris resolved relative to the Service's URL (http://conf.default.localhost:<gateway port>).
func TestTriggerToKnativeService(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv, err := server.New(server.Options{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Serving:  server.ServingOptions{BuildCacheDir: filepath.Join(dir, "build"), SourceDir: root},
		Eventing: server.EventingOptions{StatsInterval: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := &platform{t: t, dir: dir, srv: srv}
	t.Cleanup(p.stop)
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
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: conf}, uri: /echo}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: rejected}
spec:
  broker: default
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: conf}, uri: /status/400}
  delivery:
    deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: conf}, uri: /echo}
`)
	p.waitReadyWithin("ksvc", "conf", "120s")
	p.waitReady("trigger", "to-service")
	p.waitReady("trigger", "rejected")
	st := p.getJSON("trigger", "to-service")["status"].(map[string]any)
	if su := fmt.Sprint(st["subscriberUri"]); !strings.HasPrefix(su, "http://conf.default.localhost:") || !strings.HasSuffix(su, "/echo") {
		t.Fatalf("subscriberUri %s", su)
	}
	const n = 5
	for i := range n {
		req, _ := http.NewRequest(http.MethodPost, p.endpoint("gateway")+"/default/default", strings.NewReader(`{"n":1}`))
		for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": fmt.Sprint("svc-", i), "Ce-Type": "t", "Ce-Source": "/s", "Content-Type": "application/json"} {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 202 {
			t.Fatalf("post: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	eventually(t, 60*time.Second, func() error {
		a, _ := p.getJSON("trigger", "to-service")["status"].(map[string]any)["deliveryStats"].(map[string]any)
		b, _ := p.getJSON("trigger", "rejected")["status"].(map[string]any)["deliveryStats"].(map[string]any)
		if a["delivered"] != float64(n) || b["deadLettered"] != float64(n) {
			return fmt.Errorf("to-service %v, rejected %v", a, b)
		}
		return nil
	})
}
