package reconciler

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/controlplane/store"
)

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func obj(kind, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": kind,
		"metadata": map[string]any{"name": name}, "spec": map[string]any{"x": int64(1)}}}
}

type recorder struct {
	mu    sync.Mutex
	calls map[Key]int
	fail  map[Key]int // fail this many times first
}

func (r *recorder) Reconcile(_ context.Context, key Key) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[key]++
	if r.fail[key] > 0 {
		r.fail[key]--
		return errors.New("not yet")
	}
	return nil
}

func (r *recorder) count(k Key) int { r.mu.Lock(); defer r.mu.Unlock(); return r.calls[k] }

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestManagerResyncRetryAndOwners(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "db"))
	defer st.Close()
	// Present before the manager starts: reconciled by the resync.
	parent, err := st.Create(obj("Parent", "p"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{calls: map[Key]int{}, fail: map[Key]int{{"default", "flaky"}: 2}}
	m := NewManager(ManagerOptions{Store: st, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond})
	m.Register(Registration{GroupKind: "Parent.example.com", Reconciler: rec, Owns: []string{"Child.example.com"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()

	p := Key{"default", "p"}
	waitFor(t, "resync of p", func() bool { return rec.count(p) >= 1 })
	// Retries with backoff until success.
	if _, err := st.Create(obj("Parent", "flaky")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three attempts of flaky", func() bool { return rec.count(Key{"default", "flaky"}) == 3 })
	// A child's change enqueues its owner.
	before := rec.count(p)
	child := obj("Child", "c")
	child.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "Parent", Name: "p", UID: parent.GetUID()}})
	if _, err := st.Create(child); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "owner enqueued", func() bool { return rec.count(p) > before })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestNotImplementedStatus(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "db"))
	defer st.Close()
	clk := clocktesting.NewFakeClock(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	b := obj("Broker", "b")
	b.Object["status"] = nil
	created, _ := st.Create(b)
	// Keep unrelated status fields another writer set.
	created.Object["status"] = map[string]any{"address": map[string]any{"url": "http://x"}}
	if _, err := st.UpdateStatus(created); err != nil {
		t.Fatal(err)
	}
	r := NotImplemented{Store: st, Status: StatusWriter{Store: st, Clock: clk}, GroupKind: "Broker.example.com", Message: "no data plane"}
	if err := r.Reconcile(context.Background(), Key{"default", "b"}); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Get("Broker.example.com", "default", "b")
	conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
	c := conds[0].(map[string]any)
	if c["type"] != "Ready" || c["status"] != "False" || c["reason"] != "NotImplemented" || c["message"] != "no data plane" ||
		c["lastTransitionTime"] != "2026-05-01T00:00:00Z" {
		t.Fatalf("condition %v", c)
	}
	if og, _, _ := unstructured.NestedInt64(got.Object, "status", "observedGeneration"); og != 1 {
		t.Fatalf("observedGeneration %d", og)
	}
	if u, _, _ := unstructured.NestedString(got.Object, "status", "address", "url"); u != "http://x" {
		t.Fatal("other status fields dropped")
	}
	rv := got.GetResourceVersion()
	clk.Step(time.Hour)
	if err := r.Reconcile(context.Background(), Key{"default", "b"}); err != nil {
		t.Fatal(err)
	}
	again, _ := st.Get("Broker.example.com", "default", "b")
	if again.GetResourceVersion() != rv {
		t.Fatal("a settled status was rewritten")
	}
	// Deleted objects are fine.
	if err := r.Reconcile(context.Background(), Key{"default", "gone"}); err != nil {
		t.Fatal(err)
	}
}

func TestAllInNamespace(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "db"))
	defer st.Close()
	for _, o := range []struct{ kind, ns, name string }{
		{"Child", "default", "a"}, {"Child", "default", "b"}, {"Child", "other", "c"}, {"Parent", "default", "p"},
	} {
		u := obj(o.kind, o.name)
		u.SetNamespace(o.ns)
		if _, err := st.Create(u); err != nil {
			t.Fatal(err)
		}
	}
	changed := obj("Parent", "p")
	changed.SetNamespace("default")
	keys := AllInNamespace(st, "Child.example.com")(store.Event{Type: store.Modified, Object: changed})
	want := map[Key]bool{{"default", "a"}: true, {"default", "b"}: true}
	if len(keys) != len(want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	for _, k := range keys {
		if !want[k] {
			t.Errorf("key %v not in %v", k, want)
		}
	}
}

func TestGetTyped(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "db"))
	defer st.Close()
	if _, err := st.Create(obj("Child", "a")); err != nil {
		t.Fatal(err)
	}
	type child struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
		Spec     struct{ X int }   `json:"spec"`
	}
	c, err := GetTyped[child](st, "Child.example.com", "default", "a")
	if err != nil || c.Metadata.Name != "a" || c.Spec.X != 1 {
		t.Fatalf("GetTyped: %+v, %v", c, err)
	}
	if _, err := GetTyped[child](st, "Child.example.com", "default", "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing object: %v, want store.ErrNotFound", err)
	}
}
