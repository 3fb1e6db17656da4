package store

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const routeGK = "Route.serving.knative.dev"

// ksvcTree stores a Service "a" owning Configuration "a" (owning Revision "a-00001") and Route "a", with Knative's
// controller references (blockOwnerDeletion), and routeFins on the Route.
func ksvcTree(t *testing.T, routeFins ...string) *Store {
	t.Helper()
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	yes := true
	child := func(kind, name string, owner *unstructured.Unstructured, fins []string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "serving.knative.dev/v1", "kind": kind,
			"metadata": map[string]any{"name": name}}}
		u.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: owner.GetAPIVersion(), Kind: owner.GetKind(),
			Name: owner.GetName(), UID: owner.GetUID(), Controller: &yes, BlockOwnerDeletion: &yes}})
		u.SetFinalizers(fins)
		return mustCreate(t, s, u)
	}
	parent := mustCreate(t, s, svc("a", "img"))
	cfg := child("Configuration", "a", parent, nil)
	child("Revision", "a-00001", cfg, nil)
	child("Route", "a", parent, routeFins)
	return s
}

func exists(t *testing.T, s *Store, gk, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := s.Get(gk, "default", name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestForegroundWaitsForBlockingDependents(t *testing.T) {
	s := ksvcTree(t, finA)
	out, err := s.Delete(svcGK, "default", "a", DeleteOptions{Propagation: PropagateForeground})
	if err != nil {
		t.Fatal(err)
	}
	if out.GetDeletionTimestamp() == nil || !slices.Equal(out.GetFinalizers(), []string{FinalizerDeleteDependents}) {
		t.Fatalf("Delete returned %v %v, want the Service marked with %s", out.GetDeletionTimestamp(), out.GetFinalizers(), FinalizerDeleteDependents)
	}
	if exists(t, s, cfgGK, "a") != nil || exists(t, s, revGK, "a-00001") != nil {
		t.Error("the Configuration and its Revision should be gone")
	}
	route := exists(t, s, routeGK, "a")
	if route == nil || route.GetDeletionTimestamp() == nil {
		t.Fatalf("the Route (held by its finalizer) should stay marked: %v", route)
	}
	if svc := exists(t, s, svcGK, "a"); svc == nil || svc.GetDeletionTimestamp() == nil {
		t.Fatal("the Service should wait for its Route")
	}
	// A second foreground delete changes nothing.
	if _, err := s.Delete(svcGK, "default", "a", DeleteOptions{Propagation: PropagateForeground}); err != nil {
		t.Fatal(err)
	}
	route.SetFinalizers(nil)
	if _, err := s.Update(route); err != nil {
		t.Fatal(err)
	}
	if exists(t, s, routeGK, "a") != nil || exists(t, s, svcGK, "a") != nil {
		t.Error("removing the Route's finalizer should remove the Route, then release and remove the Service")
	}
}

func TestForegroundWithoutHoldsRemovesEverything(t *testing.T) {
	s := ksvcTree(t)
	if _, err := s.Delete(svcGK, "default", "a", DeleteOptions{Propagation: PropagateForeground}); err != nil {
		t.Fatal(err)
	}
	for _, o := range [][2]string{{svcGK, "a"}, {cfgGK, "a"}, {revGK, "a-00001"}, {routeGK, "a"}} {
		if exists(t, s, o[0], o[1]) != nil {
			t.Errorf("%s %s is still there", o[0], o[1])
		}
	}
}

func TestForegroundKeepsOtherFinalizers(t *testing.T) {
	s := ksvcTree(t)
	p := exists(t, s, svcGK, "a")
	p.SetFinalizers([]string{finB})
	if _, err := s.Update(p); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(svcGK, "default", "a", DeleteOptions{Propagation: PropagateForeground}); err != nil {
		t.Fatal(err)
	}
	got := exists(t, s, svcGK, "a")
	if got == nil || !slices.Equal(got.GetFinalizers(), []string{finB}) || exists(t, s, cfgGK, "a") != nil {
		t.Fatalf("dependents gone, the Service held by its own finalizer only: %v", got)
	}
}

func TestBackgroundRemovesOwnerAtOnce(t *testing.T) {
	s := ksvcTree(t, finA)
	if _, err := s.Delete(svcGK, "default", "a", DeleteOptions{Propagation: PropagateBackground}); err != nil {
		t.Fatal(err)
	}
	if exists(t, s, svcGK, "a") != nil || exists(t, s, cfgGK, "a") != nil {
		t.Error("the Service and Configuration should be gone")
	}
	if r := exists(t, s, routeGK, "a"); r == nil || r.GetDeletionTimestamp() == nil {
		t.Error("the Route should stay marked, held by its finalizer")
	}
}

func TestOrphanKeepsDependents(t *testing.T) {
	s := ksvcTree(t)
	if _, err := s.Delete(svcGK, "default", "a", DeleteOptions{Propagation: PropagateOrphan}); err != nil {
		t.Fatal(err)
	}
	if exists(t, s, svcGK, "a") != nil {
		t.Error("the Service should be gone")
	}
	for _, gk := range []string{cfgGK, routeGK} {
		u := exists(t, s, gk, "a")
		if u == nil || len(u.GetOwnerReferences()) != 0 || u.GetDeletionTimestamp() != nil {
			t.Errorf("%s should stay, without owner references: %v", gk, u)
		}
	}
	if r := exists(t, s, revGK, "a-00001"); r == nil || len(r.GetOwnerReferences()) != 1 {
		t.Error("the Revision keeps its Configuration")
	}
	if _, err := s.Delete(svcGK, "default", "x", DeleteOptions{Propagation: "Sideways"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing object: %v", err)
	}
	if _, err := s.Delete(cfgGK, "default", "a", DeleteOptions{Propagation: "Sideways"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown policy: %v", err)
	}
}

// An Update that carries managedFields stores them; one without keeps the stored ones.
func TestUpdateManagedFields(t *testing.T) {
	s := ksvcTree(t)
	u := exists(t, s, cfgGK, "a")
	u.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "m", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1"}})
	u.SetLabels(map[string]string{"x": "1"})
	if _, err := s.Update(u); err != nil {
		t.Fatal(err)
	}
	u = exists(t, s, cfgGK, "a")
	unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
	u.SetLabels(map[string]string{"x": "2"})
	if _, err := s.Update(u); err != nil {
		t.Fatal(err)
	}
	if mf := exists(t, s, cfgGK, "a").GetManagedFields(); len(mf) != 1 || mf[0].Manager != "m" {
		t.Errorf("managedFields %v", mf)
	}
}
