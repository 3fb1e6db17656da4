package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	clocktesting "k8s.io/utils/clock/testing"
)

const (
	cfgGK = "Configuration.serving.knative.dev"
	revGK = "Revision.serving.knative.dev"
	finA  = "example.com/a"
	finB  = "example.com/b"
)

var (
	created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	deleted = time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC) // the clock is stepped here before the test's steps
)

// finalizerFixture is a Service "a" owning Configuration "a" owning Revision "a-00001", with the finalizers the
// case asks for, and a watch of every kind started after they were created.
type finalizerFixture struct {
	t      *testing.T
	s      *Store
	events <-chan Event
}

func newFinalizerFixture(t *testing.T, svcFins, cfgFins []string) *finalizerFixture {
	t.Helper()
	clk := clocktesting.NewFakeClock(created)
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "db"), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	p := svc("a", "img")
	p.SetFinalizers(svcFins)
	parent := mustCreate(t, s, p)
	c := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
		"metadata": map[string]any{"name": "a"}}}
	c.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "a", UID: parent.GetUID()}})
	c.SetFinalizers(cfgFins)
	cfg := mustCreate(t, s, c)
	r := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "serving.knative.dev/v1", "kind": "Revision",
		"metadata": map[string]any{"name": "a-00001"}}}
	r.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "serving.knative.dev/v1", Kind: "Configuration", Name: "a", UID: cfg.GetUID()}})
	mustCreate(t, s, r)
	rv, _ := s.CurrentResourceVersion()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := s.Watch(ctx, WatchOptions{ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	clk.SetTime(deleted)
	return &finalizerFixture{t: t, s: s, events: ch}
}

func mustCreate(t *testing.T, s *Store, u *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	out, err := s.Create(u)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *finalizerFixture) get(gk, name string) (*unstructured.Unstructured, error) {
	return f.s.Get(gk, "default", name)
}

func (f *finalizerFixture) mustGet(gk, name string) *unstructured.Unstructured {
	f.t.Helper()
	u, err := f.get(gk, name)
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *finalizerFixture) delete(gk, name string) *unstructured.Unstructured {
	f.t.Helper()
	u, err := f.s.Delete(gk, "default", name, DeleteOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

// setFinalizers updates the stored object with only its finalizers changed.
func (f *finalizerFixture) setFinalizers(gk, name string, fins ...string) (*unstructured.Unstructured, error) {
	u := f.mustGet(gk, name)
	u.SetFinalizers(fins)
	return f.s.Update(u)
}

// seen returns the events published since the fixture was built, as "TYPE Kind/name", up to a sentinel write (so
// that "no further event" is checked without waiting for one that might come).
func (f *finalizerFixture) seen() []string {
	f.t.Helper()
	mustCreate(f.t, f.s, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "sentinel"}}})
	var out []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-f.events:
			if e.Object.GetName() == "sentinel" {
				return out
			}
			out = append(out, fmt.Sprintf("%s %s/%s", e.Type, e.Object.GetKind(), e.Object.GetName()))
		case <-timeout:
			f.t.Fatalf("sentinel event not seen; events so far %v", out)
		}
	}
}

func wantDeleting(t *testing.T, u *unstructured.Unstructured) {
	t.Helper()
	dt := u.GetDeletionTimestamp()
	if dt == nil || !dt.Time.Equal(deleted) {
		t.Fatalf("%s %s: deletionTimestamp %v, want %v", u.GetKind(), u.GetName(), dt, deleted)
	}
	if g := u.GetDeletionGracePeriodSeconds(); g == nil || *g != 0 {
		t.Fatalf("%s %s: deletionGracePeriodSeconds %v, want 0", u.GetKind(), u.GetName(), g)
	}
}

func wantGone(t *testing.T, f *finalizerFixture, gk, name string) {
	t.Helper()
	if _, err := f.get(gk, name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("%s %s: want NotFound, got %v", gk, name, err)
	}
}

func TestFinalizers(t *testing.T) {
	cases := []struct {
		name             string
		svcFins, cfgFins []string
		run              func(t *testing.T, f *finalizerFixture)
		events           []string
	}{{
		name: "delete marks an object with finalizers", svcFins: []string{finA},
		run: func(t *testing.T, f *finalizerFixture) {
			before := f.mustGet(svcGK, "a")
			out := f.delete(svcGK, "a")
			wantDeleting(t, out)
			got := f.mustGet(svcGK, "a")
			wantDeleting(t, got)
			if got.GetResourceVersion() != out.GetResourceVersion() || got.GetResourceVersion() == before.GetResourceVersion() {
				t.Fatalf("resourceVersion %s returned, %s stored, %s before", out.GetResourceVersion(), got.GetResourceVersion(), before.GetResourceVersion())
			}
			if !slices.Equal(got.GetFinalizers(), []string{finA}) || got.GetGeneration() != 1 {
				t.Fatalf("finalizers %v generation %d", got.GetFinalizers(), got.GetGeneration())
			}
			f.mustGet(cfgGK, "a") // nothing cascades yet
			f.mustGet(revGK, "a-00001")
		},
		events: []string{"MODIFIED Service/a"},
	}, {
		name: "a second delete changes nothing", svcFins: []string{finA},
		run: func(t *testing.T, f *finalizerFixture) {
			first := f.delete(svcGK, "a")
			second := f.delete(svcGK, "a")
			wantDeleting(t, second)
			if second.GetResourceVersion() != first.GetResourceVersion() {
				t.Fatalf("second delete bumped resourceVersion %s -> %s", first.GetResourceVersion(), second.GetResourceVersion())
			}
			if _, err := f.s.Delete(svcGK, "default", "a", DeleteOptions{ResourceVersion: "1"}); !errors.Is(err, ErrConflict) {
				t.Fatalf("stale precondition on a second delete: %v", err)
			}
		},
		events: []string{"MODIFIED Service/a"},
	}, {
		name: "an update keeps the deletion stamp whatever it says", svcFins: []string{finA},
		run: func(t *testing.T, f *finalizerFixture) {
			f.delete(svcGK, "a")
			cleared := f.mustGet(svcGK, "a")
			cleared.SetDeletionTimestamp(nil)
			cleared.SetDeletionGracePeriodSeconds(nil)
			cleared.SetLabels(map[string]string{"x": "1"})
			out, err := f.s.Update(cleared)
			if err != nil {
				t.Fatal(err)
			}
			wantDeleting(t, out)
			moved := f.mustGet(svcGK, "a")
			later := metav1.NewTime(deleted.Add(time.Hour))
			moved.SetDeletionTimestamp(&later)
			thirty := int64(30)
			moved.SetDeletionGracePeriodSeconds(&thirty)
			moved.SetLabels(map[string]string{"x": "2"})
			if out, err = f.s.Update(moved); err != nil {
				t.Fatal(err)
			}
			wantDeleting(t, out)
			wantDeleting(t, f.mustGet(svcGK, "a"))
			if f.mustGet(svcGK, "a").GetLabels()["x"] != "2" {
				t.Fatal("label change lost")
			}
		},
		events: []string{"MODIFIED Service/a", "MODIFIED Service/a", "MODIFIED Service/a"},
	}, {
		name: "no finalizer can be added while deleting", svcFins: []string{finA, finB},
		run: func(t *testing.T, f *finalizerFixture) {
			f.delete(svcGK, "a")
			before := f.mustGet(svcGK, "a")
			for _, fins := range [][]string{{finA, finB, "example.com/c"}, {finA, "example.com/c"}} {
				_, err := f.setFinalizers(svcGK, "a", fins...)
				var ie *InvalidError
				if !errors.Is(err, ErrInvalid) || !errors.As(err, &ie) || len(ie.Errs) != 1 || ie.Errs[0].Field != "metadata.finalizers" ||
					!strings.Contains(err.Error(), `Service.serving.knative.dev "a" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"example.com/c"}`) {
					t.Fatalf("finalizers %v: %v", fins, err)
				}
			}
			if after := f.mustGet(svcGK, "a"); after.GetResourceVersion() != before.GetResourceVersion() {
				t.Fatal("a refused update changed the object")
			}
		},
		events: []string{"MODIFIED Service/a"},
	}, {
		name: "removing one of two finalizers keeps the object", svcFins: []string{finA, finB},
		run: func(t *testing.T, f *finalizerFixture) {
			f.delete(svcGK, "a")
			out, err := f.setFinalizers(svcGK, "a", finB)
			if err != nil {
				t.Fatal(err)
			}
			wantDeleting(t, out)
			if got := f.mustGet(svcGK, "a").GetFinalizers(); !slices.Equal(got, []string{finB}) {
				t.Fatalf("finalizers %v", got)
			}
			f.mustGet(revGK, "a-00001")
		},
		events: []string{"MODIFIED Service/a", "MODIFIED Service/a"},
	}, {
		name: "removing the last finalizer removes the object and cascades", svcFins: []string{finA},
		run: func(t *testing.T, f *finalizerFixture) {
			f.delete(svcGK, "a")
			u := f.mustGet(svcGK, "a")
			u.SetFinalizers(nil)
			u.SetLabels(map[string]string{"last": "write"})
			out, err := f.s.Update(u)
			if err != nil {
				t.Fatal(err)
			}
			wantDeleting(t, out)
			rv, _ := f.s.CurrentResourceVersion()
			if len(out.GetFinalizers()) != 0 || out.GetLabels()["last"] != "write" || out.GetResourceVersion() != fmt.Sprint(rv) {
				t.Fatalf("returned %v (store at %d)", out.Object["metadata"], rv)
			}
			wantGone(t, f, svcGK, "a")
			wantGone(t, f, cfgGK, "a")
			wantGone(t, f, revGK, "a-00001")
		},
		events: []string{"MODIFIED Service/a", "DELETED Revision/a-00001", "DELETED Configuration/a", "DELETED Service/a"},
	}, {
		name: "a status update while deleting keeps the stamp and the object", svcFins: []string{finA},
		run: func(t *testing.T, f *finalizerFixture) {
			f.delete(svcGK, "a")
			u := f.mustGet(svcGK, "a")
			u.SetFinalizers(nil) // ignored: status updates touch only status
			u.SetDeletionTimestamp(nil)
			u.Object["status"] = map[string]any{"observedGeneration": int64(1)}
			out, err := f.s.UpdateStatus(u)
			if err != nil {
				t.Fatal(err)
			}
			wantDeleting(t, out)
			if !slices.Equal(f.mustGet(svcGK, "a").GetFinalizers(), []string{finA}) {
				t.Fatal("status update changed finalizers")
			}
		},
		events: []string{"MODIFIED Service/a", "MODIFIED Service/a"},
	}, {
		name: "finalizers come and go freely before a delete", svcFins: nil,
		run: func(t *testing.T, f *finalizerFixture) {
			if _, err := f.setFinalizers(svcGK, "a", finA); err != nil {
				t.Fatal(err)
			}
			out, err := f.setFinalizers(svcGK, "a")
			if err != nil || out.GetDeletionTimestamp() != nil {
				t.Fatalf("%v %v", err, out)
			}
			f.mustGet(svcGK, "a")
			f.delete(svcGK, "a") // no finalizers: at once
			wantGone(t, f, svcGK, "a")
			wantGone(t, f, revGK, "a-00001")
		},
		events: []string{"MODIFIED Service/a", "MODIFIED Service/a", "DELETED Revision/a-00001", "DELETED Configuration/a", "DELETED Service/a"},
	}, {
		name: "a dependent with finalizers is marked, and cascades when its last finalizer goes", cfgFins: []string{finA},
		run: func(t *testing.T, f *finalizerFixture) {
			f.delete(svcGK, "a")
			wantGone(t, f, svcGK, "a")
			wantDeleting(t, f.mustGet(cfgGK, "a"))
			f.mustGet(revGK, "a-00001") // its owner is still there
			f.delete(cfgGK, "a")        // already being deleted: nothing
			if _, err := f.setFinalizers(cfgGK, "a"); err != nil {
				t.Fatal(err)
			}
			wantGone(t, f, cfgGK, "a")
			wantGone(t, f, revGK, "a-00001")
		},
		events: []string{"MODIFIED Configuration/a", "DELETED Service/a", "DELETED Revision/a-00001", "DELETED Configuration/a"},
	}, {
		name: "create drops a deletion stamp", svcFins: nil,
		run: func(t *testing.T, f *finalizerFixture) {
			u := svc("b", "img")
			now := metav1.NewTime(deleted)
			u.SetDeletionTimestamp(&now)
			zero := int64(0)
			u.SetDeletionGracePeriodSeconds(&zero)
			u.SetFinalizers([]string{finA})
			out := mustCreate(t, f.s, u)
			if out.GetDeletionTimestamp() != nil || out.GetDeletionGracePeriodSeconds() != nil || !slices.Equal(out.GetFinalizers(), []string{finA}) {
				t.Fatalf("created %v", out.Object["metadata"])
			}
		},
		events: []string{"ADDED Service/b"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFinalizerFixture(t, c.svcFins, c.cfgFins)
			c.run(t, f)
			if got := f.seen(); !slices.Equal(got, c.events) {
				t.Fatalf("events\n got %q\nwant %q", got, c.events)
			}
		})
	}
}

func TestDeletingSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	clk := clocktesting.NewFakeClock(deleted)
	s, err := Open(Options{Path: path, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	u := svc("a", "img")
	u.SetFinalizers([]string{finA})
	mustCreate(t, s, u)
	marked, err := s.Delete(svcGK, "", "a", DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(Options{Path: path, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(svcGK, "", "a")
	if err != nil {
		t.Fatal(err)
	}
	wantDeleting(t, got)
	if got.GetResourceVersion() != marked.GetResourceVersion() {
		t.Fatalf("resourceVersion %s after reopen, %s before", got.GetResourceVersion(), marked.GetResourceVersion())
	}
	got.SetFinalizers(nil)
	if _, err := s.Update(got); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(svcGK, "", "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the last finalizer went: %v", err)
	}
}
