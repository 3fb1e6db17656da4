package server_test

import (
	"fmt"
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
	p := newPlatform(t, server.Options{DataDir: dir,
		Serving:  server.ServingOptions{BuildCacheDir: filepath.Join(dir, "build"), SourceDir: root},
		Eventing: server.EventingOptions{StatsInterval: 100 * time.Millisecond}})
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
  # /status/200 acknowledges with an empty 200. (/echo would answer 200 with the event's JSON data, which is not a
  # CloudEvent: a failed delivery in Knative's semantics, retried and dead-lettered.)
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: conf}, uri: /status/200}
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
	if su := fmt.Sprint(st["subscriberUri"]); !strings.HasPrefix(su, "http://conf.default.localhost:") || !strings.HasSuffix(su, "/status/200") {
		t.Fatalf("subscriberUri %s", su)
	}
	const n = 5
	for i := range n {
		if code := p.postEvent("/default/default", fmt.Sprint("svc-", i), "t", "/s", `{"n":1}`); code != 202 {
			t.Fatalf("post: %d", code)
		}
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
