package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	clocktesting "k8s.io/utils/clock/testing"
)

const svcGK = "Service.serving.knative.dev"

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(Options{Path: path, Clock: clocktesting.NewFakePassiveClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
		ClusterScoped: func(gk string) bool { return gk == "Namespace" }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func svc(name, image string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.knative.dev/v1", "kind": "Service",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"image": image}}}}},
	}}
}

func TestCreateGetUpdateStatus(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	in := svc("hello", "a")
	in.Object["status"] = map[string]any{"ignored": true}
	c, err := s.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	if c.GetNamespace() != "default" || c.GetUID() == "" || c.GetGeneration() != 1 || c.GetResourceVersion() != "1" ||
		!c.GetCreationTimestamp().Time.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || c.Object["status"] != nil {
		t.Fatalf("created %v", c.Object)
	}
	if _, err := s.Create(svc("hello", "a")); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	// Status update: no generation bump.
	st := c.DeepCopy()
	st.Object["status"] = map[string]any{"observedGeneration": int64(1)}
	st2, err := s.UpdateStatus(st)
	if err != nil || st2.GetGeneration() != 1 || st2.GetResourceVersion() != "2" {
		t.Fatalf("status update %v %v", err, st2)
	}
	// Stale resourceVersion conflicts.
	stale := svc("hello", "b")
	stale.SetResourceVersion("1")
	if _, err := s.Update(stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	// Label change: no generation bump, status kept.
	up := svc("hello", "a")
	up.SetLabels(map[string]string{"x": "y"})
	up.SetResourceVersion("2")
	u1, err := s.Update(up)
	if err != nil || u1.GetGeneration() != 1 || u1.Object["status"] == nil || u1.GetResourceVersion() != "3" {
		t.Fatalf("label update %v %v", err, u1)
	}
	// Spec change bumps generation; the incoming status is ignored.
	up = svc("hello", "b")
	up.SetLabels(map[string]string{"x": "y"})
	up.Object["status"] = map[string]any{"observedGeneration": int64(99)}
	u2, err := s.Update(up)
	if err != nil || u2.GetGeneration() != 2 {
		t.Fatalf("spec update %v %v", err, u2)
	}
	if og, _, _ := unstructured.NestedInt64(u2.Object, "status", "observedGeneration"); og != 1 {
		t.Fatalf("status touched by update: %v", u2.Object["status"])
	}
	// A no-op update keeps the resourceVersion.
	u3, err := s.Update(up)
	if err != nil || u3.GetResourceVersion() != u2.GetResourceVersion() {
		t.Fatalf("no-op update %v %v vs %v", err, u3.GetResourceVersion(), u2.GetResourceVersion())
	}
	got, err := s.Get(svcGK, "default", "hello")
	if err != nil || got.GetResourceVersion() != u2.GetResourceVersion() {
		t.Fatalf("get %v %v", err, got)
	}
	if _, err := s.Get(svcGK, "default", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
}

func TestCascadingDeleteAndPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	parent, _ := s.Create(svc("p", "a"))
	owner := metav1.OwnerReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "p", UID: parent.GetUID()}
	child := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
		"metadata": map[string]any{"name": "p"}}}
	child.SetOwnerReferences([]metav1.OwnerReference{owner})
	c, err := s.Create(child)
	if err != nil {
		t.Fatal(err)
	}
	grand := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "serving.knative.dev/v1", "kind": "Revision",
		"metadata": map[string]any{"name": "p-00001"}}}
	grand.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "serving.knative.dev/v1", Kind: "Configuration", Name: "p", UID: c.GetUID()}})
	if _, err := s.Create(grand); err != nil {
		t.Fatal(err)
	}
	other, _ := s.Create(svc("other", "a"))
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "apps", "namespace": "x"}}}
	if n, err := s.Create(ns); err != nil || n.GetNamespace() != "" {
		t.Fatalf("cluster-scoped create %v %v", err, n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	defer s.Close()
	if got, err := s.Get(svcGK, "", "other"); err != nil || got.GetUID() != other.GetUID() {
		t.Fatalf("after reopen %v %v", err, got)
	}
	if rv, _ := s.CurrentResourceVersion(); rv != 5 {
		t.Fatalf("rv after reopen %d", rv)
	}
	ch, err := s.Watch(context.Background(), WatchOptions{ResourceVersion: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(svcGK, "default", "p", DeleteOptions{ResourceVersion: "999"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("delete precondition: %v", err)
	}
	if _, err := s.Delete(svcGK, "default", "p", DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for range 3 {
		e := <-ch
		if e.Type != Deleted {
			t.Fatalf("event %v", e.Type)
		}
		kinds = append(kinds, e.Object.GetKind())
	}
	if kinds[0] != "Revision" || kinds[1] != "Configuration" || kinds[2] != "Service" {
		t.Fatalf("delete order %v", kinds)
	}
	for _, gk := range []string{svcGK, "Configuration.serving.knative.dev", "Revision.serving.knative.dev"} {
		objs, _, _ := s.List(gk, "")
		for _, o := range objs {
			if o.GetName() != "other" {
				t.Fatalf("%s %s survived", gk, o.GetName())
			}
		}
	}
}

func TestWatch(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	_, _ = s.Create(svc("a", "1"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Watch(ctx, WatchOptions{GroupKind: svcGK})
	if err != nil {
		t.Fatal(err)
	}
	e := <-ch
	if e.Type != Added || e.Object.GetName() != "a" {
		t.Fatalf("initial %v", e)
	}
	_, _ = s.Create(svc("b", "1"))
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c"}}}
	_, _ = s.Create(cm) // another kind: filtered out
	up := svc("b", "2")
	_, _ = s.Update(up)
	_, _ = s.Delete(svcGK, "default", "b", DeleteOptions{})
	want := []EventType{Added, Modified, Deleted}
	var last uint64
	for i, w := range want {
		select {
		case e := <-ch:
			if e.Type != w || e.Object.GetName() != "b" || e.ResourceVersion <= last {
				t.Fatalf("event %d: %v %s rv %d", i, e.Type, e.Object.GetName(), e.ResourceVersion)
			}
			last = e.ResourceVersion
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d not delivered", i)
		}
	}
	// Resuming from a resourceVersion replays what came after it.
	ch2, err := s.Watch(ctx, WatchOptions{GroupKind: svcGK, ResourceVersion: 1})
	if err != nil {
		t.Fatal(err)
	}
	if e := <-ch2; e.Type != Added || e.Object.GetName() != "b" {
		t.Fatalf("resume %v %s", e.Type, e.Object.GetName())
	}
	cancel()
	for range ch2 {
	}
}

func TestWatchGone(t *testing.T) {
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "db"), WatchHistory: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		if _, err := s.Create(svc(n, "1")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Watch(context.Background(), WatchOptions{ResourceVersion: 1}); !errors.Is(err, ErrGone) {
		t.Fatalf("want ErrGone, got %v", err)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	defer s.Close()
	if _, err := Open(Options{Path: path, OpenTimeout: 100 * time.Millisecond}); err == nil {
		t.Fatal("second open of a locked store succeeded")
	}
}
