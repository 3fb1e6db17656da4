package api

import (
	"errors"
	"net/http"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/registry"
	"github.com/tide-run/tide/controlplane/store"
)

// Server-side dry run (`kubectl ... --dry-run=server`, ?dryRun=All): the request is decoded, defaulted, validated
// and checked against the stored object exactly as a real one, and the answer is the object as it would be
// stored; nothing is written, no watch event is sent, no reconciler runs.

// dryRun reports whether the request asks for a dry run; Kubernetes accepts only "All".
func dryRun(r *http.Request) (bool, *apiError) {
	v, ok := r.URL.Query()["dryRun"]
	if !ok || len(v) == 0 || (len(v) == 1 && v[0] == "") {
		return false, nil
	}
	for _, x := range v {
		if x != "All" {
			return false, badRequest(`dryRun: Unsupported value: "` + x + `": supported values: "All"`)
		}
	}
	return true, nil
}

func (s *Server) dryCreate(w http.ResponseWriter, r *http.Request, rt route, p *registry.Prepared) *apiError {
	_, err := s.st.Get(rt.kind.StorageGroupKind(), p.Object.GetNamespace(), p.Object.GetName())
	switch {
	case err == nil:
		return storeError(rt.kind, p.Object.GetName(), store.ErrAlreadyExists)
	case !errors.Is(err, store.ErrNotFound):
		return storeError(rt.kind, p.Object.GetName(), err)
	}
	obj := p.Object.DeepCopy()
	obj.SetCreationTimestamp(metaNow())
	obj.SetGeneration(1)
	writeWarnings(w, p.Warnings)
	s.writeObject(w, r, rt.kind, http.StatusCreated, obj.Object)
	return nil
}

// dryUpdate answers next as an update of old would store it: old's metadata that the store owns, old's status.
func (s *Server) dryUpdate(w http.ResponseWriter, r *http.Request, rt route, old, next *unstructured.Unstructured, warnings []string) *apiError {
	if rv := next.GetResourceVersion(); rv != "" && rv != old.GetResourceVersion() {
		return storeError(rt.kind, rt.name, store.ErrConflict)
	}
	obj := next.DeepCopy()
	obj.SetUID(old.GetUID())
	obj.SetResourceVersion(old.GetResourceVersion())
	obj.SetCreationTimestamp(old.GetCreationTimestamp())
	obj.SetGeneration(old.GetGeneration())
	if st, ok := old.Object["status"]; ok && !rt.status {
		obj.Object["status"] = st
	}
	writeWarnings(w, warnings)
	s.writeObject(w, r, rt.kind, http.StatusOK, obj.Object)
	return nil
}

func metaNow() metav1.Time { return metav1.Time{Time: time.Now().UTC().Truncate(time.Second)} }
