package server_test

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tide-run/tide/controlplane/store"
	"github.com/tide-run/tide/eventing/ingress"
	"github.com/tide-run/tide/server"
)

// TestDeletedWhileStoppedOnExternalCluster: on an external RocketMQ cluster (no start-up sweep there) a Trigger and
// a Broker deleted while tide is stopped still get their consumer group and topic deleted: their finalizers hold
// them in the store until the next start's reconcilers have cleaned up, and then they go.
func TestDeletedWhileStoppedOnExternalCluster(t *testing.T) {
	cluster := startPlatform(t, t.TempDir())
	ns := cluster.endpoint("rocketmq name server")
	opts := server.Options{DataDir: t.TempDir(), RocketMQNameServers: []string{ns}}
	start := func() *platform {
		p := newPlatform(t, opts)
		eventually(t, 15*time.Second, func() error {
			if !p.srv.Ready() {
				return fmt.Errorf("not ready")
			}
			return nil
		})
		return p
	}
	p := start()
	sub := newReceiver(t)
	p.apply(fmt.Sprintf(`
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: ext}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: ext}
spec: {broker: ext, subscriber: {uri: %s}}
`, sub.URL))
	p.waitReady("trigger", "ext")
	p.postUntilDelivered(t, "/default/ext", "before", sub)
	for kind, fin := range map[string]string{"trigger": "triggers.eventing.knative.dev", "broker": "brokers.eventing.knative.dev"} {
		fins, _ := p.getJSON(kind, "ext")["metadata"].(map[string]any)["finalizers"].([]any)
		if !slices.Contains(fins, any(fin)) {
			t.Fatalf("%s finalizers %v, want %s", kind, fins, fin)
		}
	}
	const groupPrefix = "tide-trigger-default-ext-"
	topic := ingress.TopicFor("default", "ext")
	leftovers := func() (groups []string, topicListed bool) {
		return cluster.mqGroups(ns, groupPrefix), strings.Contains(cluster.mustRun("", "mq", "topic", "list", "--namesrv", ns), topic)
	}
	if g, listed := leftovers(); len(g) != 1 || !listed {
		t.Fatalf("before: groups %v, topic listed %v", g, listed)
	}
	p.stop()

	st, err := store.Open(store.Options{Path: filepath.Join(opts.DataDir, "store.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, gk := range []string{"Trigger.eventing.knative.dev", "Broker.eventing.knative.dev"} {
		if _, err := st.Delete(gk, "default", "ext", store.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	p = start()
	for _, kind := range []string{"trigger", "broker"} {
		p.mustRun("", "wait", kind, "ext", "--for=delete", "--timeout=20s")
	}
	if g, listed := leftovers(); len(g) != 0 || listed {
		t.Fatalf("after: groups %v, topic listed %v", g, listed)
	}
}
