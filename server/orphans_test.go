package server_test

import (
	"context"
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
	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
)

// TestOrphansOfDowntimeAreSweptAtStart: a Trigger and a Broker deleted while tide is stopped, and a tail group
// whose consumer is gone, are removed from the embedded broker when tide starts again; the objects that still
// exist keep their group and topic (and keep delivering), and a user's group is left alone.
func TestOrphansOfDowntimeAreSweptAtStart(t *testing.T) {
	dir := t.TempDir()
	sub := newReceiver(t)
	p := startPlatform(t, dir)
	p.apply(fmt.Sprintf(`
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: keep}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: gone}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: keep}
spec: {broker: keep, subscriber: {uri: %[1]s}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: gone}
spec: {broker: keep, subscriber: {uri: %[1]s}}
`, sub.URL))
	p.waitReady("trigger", "keep")
	p.waitReady("trigger", "gone")
	p.waitReady("broker", "gone")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := admin.Dial(ctx, p.endpoint("rocketmq name server"))
	if err != nil {
		t.Fatal(err)
	}
	// What a SIGKILLed tail leaves (a group nobody consumes in) and a user's group.
	for _, g := range []string{"tide-tail-killed", "billing"} {
		if err := adm.CreateGroup(ctx, mqmeta.GroupConfig{GroupName: g, ConsumeEnable: true, RetryQueueNums: 1, RetryMaxTimes: 16}); err != nil {
			t.Fatal(err)
		}
	}
	_ = adm.Close()
	groups := func(p *platform) []string { return p.mqGroups(p.endpoint("rocketmq name server"), "") }
	var keepGroup, goneGroup string
	eventually(t, 20*time.Second, func() error {
		keepGroup, goneGroup = "", ""
		for _, g := range groups(p) {
			switch {
			case strings.HasPrefix(g, "tide-trigger-default-keep-"):
				keepGroup = g
			case strings.HasPrefix(g, "tide-trigger-default-gone-"):
				goneGroup = g
			}
		}
		if keepGroup == "" || goneGroup == "" {
			return fmt.Errorf("trigger groups not there yet: %v", groups(p))
		}
		return nil
	})
	p.stop()

	st, err := store.Open(store.Options{Path: filepath.Join(dir, "store.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct{ gk, name, finalizer string }{
		{"Trigger.eventing.knative.dev", "gone", "triggers.eventing.knative.dev"},
		{"Broker.eventing.knative.dev", "gone", "brokers.eventing.knative.dev"},
	} {
		// The reconcilers gave both a finalizer: the delete only marks them, and the next start finishes it.
		obj, err := st.Delete(k.gk, "default", k.name, store.DeleteOptions{})
		if err != nil {
			t.Fatalf("delete %s: %v", k.gk, err)
		}
		if obj.GetDeletionTimestamp() == nil || !slices.Contains(obj.GetFinalizers(), k.finalizer) {
			t.Fatalf("%s %s not held by finalizer %s: %v", k.gk, k.name, k.finalizer, obj.Object["metadata"])
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	p2 := startPlatform(t, dir)
	got := groups(p2)
	for _, g := range []string{goneGroup, "tide-tail-killed"} {
		if slices.Contains(got, g) {
			t.Errorf("orphaned group %s survived the restart: %v", g, got)
		}
	}
	for _, g := range []string{keepGroup, "billing"} {
		if !slices.Contains(got, g) {
			t.Errorf("group %s was swept: %v", g, got)
		}
	}
	topics := p2.mustRun("", "mq", "topic", "list", "--namesrv", p2.endpoint("rocketmq name server"))
	if strings.Contains(topics, ingress.TopicFor("default", "gone")) {
		t.Errorf("topic of the deleted Broker survived the restart:\n%s", topics)
	}
	if !strings.Contains(topics, ingress.TopicFor("default", "keep")) {
		t.Errorf("topic of the existing Broker was swept:\n%s", topics)
	}
	for _, kind := range []string{"trigger", "broker"} {
		p2.mustRun("", "wait", kind, "gone", "--for=delete", "--timeout=20s")
	}
	p2.waitReady("trigger", "keep")
	p2.postUntilDelivered(t, "/default/keep", "after-restart", sub)
}
