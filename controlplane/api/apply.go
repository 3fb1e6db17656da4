package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	kspec "k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/yaml"

	"github.com/tide-run/tide/controlplane/openapi"
	"github.com/tide-run/tide/controlplane/store"

	"github.com/tide-run/tide/controlplane/registry"
)

// Strategic merge patch is defined by the Go struct tags (patchStrategy, patchMergeKey) of Kubernetes' own types;
// as on a cluster it applies to the kinds tide decodes with a k8s.io/api type (Secret, ConfigMap, ServiceAccount,
// Namespace, Event, RBAC) and is refused (415) for custom kinds, which take merge and JSON patches. kubectl
// chooses by the PATCH operation's consumes list in /openapi/v2, which says the same (openapi.go).

// strategicKind reports whether k's documents are Kubernetes built-in types (strategic merge patch applies).
func strategicKind(k registry.Kind) bool {
	if k.New == nil {
		return false
	}
	t := reflect.TypeOf(k.New())
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return strings.HasPrefix(t.PkgPath(), "k8s.io/api/")
}

// strategicMerge applies a strategic merge patch to cur (JSON of the stored object) with k's Go type's tags.
func strategicMerge(k registry.Kind, cur, patch []byte) ([]byte, error) {
	return strategicpatch.StrategicMergePatch(cur, patch, k.New())
}

// patchTypes are the patch media types PATCH accepts for k, in kubectl's order of preference.
func patchTypes(k registry.Kind) []string {
	if strategicKind(k) {
		return []string{JSONPatchType, MergePatchType, strategicPatchType, applyPatchType}
	}
	return []string{JSONPatchType, MergePatchType, applyPatchType}
}

// Server-side apply (application/apply-patch+yaml, `kubectl apply --server-side`): structured-merge-diff, through
// apimachinery's managedfields.FieldManager as the API server uses it for custom resources, with the schema of
// the kind from package openapi (the same reflection that serves /openapi). The field manager merges the applied
// configuration into the live object, records ownership in metadata.managedFields, and refuses to take a field
// another manager owns with a different value (409 Conflict) unless force=true. The merged object then takes the
// path of any update: strict decoding, defaults, validation, the store.
//
// Writes other than apply (POST, PUT, merge/JSON/strategic patches) record "Update" entries with the same field
// manager (writeoptions.go), so an apply conflicts with an edit or a patch as on a cluster.

// fieldManagers caches one FieldManager per GroupKind (kinds are registered before the API serves).
type fieldManagers struct {
	mu sync.Mutex
	m  map[string]*managedfields.FieldManager
}

func (s *Server) fieldManagerFor(k registry.Kind) (*managedfields.FieldManager, error) {
	s.fms.mu.Lock()
	defer s.fms.mu.Unlock()
	if fm, ok := s.fms.m[k.GroupKind()]; ok {
		return fm, nil
	}
	var tc managedfields.TypeConverter
	if k.New == nil {
		tc = managedfields.NewDeducedTypeConverter()
	} else {
		b := openapi.NewBuilder("#/definitions/")
		b.BuiltinPatchTags = strategicKind(k)
		b.AddKind(k.New(), gvkOf(k))
		defs := make(map[string]*kspec.Schema, len(b.Defs))
		for n, d := range b.Defs {
			defs[n] = &d
		}
		var err error
		if tc, err = managedfields.NewTypeConverter(defs, false); err != nil {
			return nil, fmt.Errorf("server-side apply: schema of %s: %w", k.GroupKind(), err)
		}
	}
	gvk := schema.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind}
	fm, err := managedfields.NewDefaultCRDFieldManager(tc, oneVersion{}, noDefaults{}, unstructuredCreater{}, gvk, gvk.GroupVersion(), "", nil)
	if err != nil {
		return nil, err
	}
	if s.fms.m == nil {
		s.fms.m = map[string]*managedfields.FieldManager{}
	}
	s.fms.m[k.GroupKind()] = fm
	return fm, nil
}

// oneVersion converts nothing: every tide kind is served in one version.
type oneVersion struct{}

func (oneVersion) Convert(_, _, _ any) error {
	return errors.New("conversion between versions is not supported")
}
func (oneVersion) ConvertToVersion(in runtime.Object, _ runtime.GroupVersioner) (runtime.Object, error) {
	return in, nil
}
func (oneVersion) ConvertFieldLabel(_ schema.GroupVersionKind, label, value string) (string, string, error) {
	return label, value, nil
}

// noDefaults: defaults are the registry's job, after the merge.
type noDefaults struct{}

func (noDefaults) Default(runtime.Object) {}

type unstructuredCreater struct{}

func (unstructuredCreater) New(gvk schema.GroupVersionKind) (runtime.Object, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

// applyPatch serves a PATCH with application/apply-patch+yaml.
func (s *Server) applyPatch(w http.ResponseWriter, r *http.Request, rt route) *apiError {
	if rt.status {
		return unsupportedPatch(applyPatchType, "tide does not implement server-side apply of the status subresource")
	}
	q := r.URL.Query()
	manager := q.Get("fieldManager")
	if manager == "" {
		return &apiError{code: http.StatusUnprocessableEntity, reason: metav1.StatusReasonInvalid,
			message: "PATCH " + r.URL.Path + ": fieldManager: Required value: is required for apply requests"}
	}
	force := q.Get("force") == "true"
	body, aerr := readBody(r)
	if aerr != nil {
		return aerr
	}
	js, err := yaml.YAMLToJSON(body)
	if err != nil {
		return badRequest("cannot decode the applied configuration: " + err.Error())
	}
	applied := &unstructured.Unstructured{}
	if err := applied.UnmarshalJSON(js); err != nil {
		return badRequest("cannot decode the applied configuration: " + err.Error())
	}
	if applied.GetName() != rt.name {
		return badRequest(fmt.Sprintf("the name of the applied configuration (%s) does not match the name on the URL (%s)", applied.GetName(), rt.name))
	}
	if k, err := s.reg.ForAPIVersionKind(applied.GetAPIVersion(), applied.GetKind()); err != nil || k.GroupKind() != rt.kind.GroupKind() {
		return badRequest(fmt.Sprintf("the applied configuration's apiVersion/kind (%s %s) do not match the request path (%s)",
			applied.GetAPIVersion(), applied.GetKind(), resourceName(rt.kind)))
	}
	if rt.kind.Namespaced && applied.GetNamespace() == "" {
		applied.SetNamespace(rt.namespace)
	}
	fm, err := s.fieldManagerFor(rt.kind)
	if err != nil {
		return &apiError{code: http.StatusInternalServerError, reason: metav1.StatusReasonInternalError, message: err.Error()}
	}
	for attempt := 0; ; attempt++ {
		live, err := s.st.Get(rt.kind.StorageGroupKind(), rt.namespace, rt.name)
		creating := errors.Is(err, store.ErrNotFound)
		if err != nil && !creating {
			return storeError(rt.kind, rt.name, err)
		}
		if creating {
			live = &unstructured.Unstructured{}
			live.SetGroupVersionKind(applied.GroupVersionKind())
		}
		merged, err := fm.Apply(live, applied.DeepCopy(), manager, force)
		if err != nil {
			var se *apierrors.StatusError
			if errors.As(err, &se) {
				return statusError(se)
			}
			return &apiError{code: http.StatusUnprocessableEntity, reason: metav1.StatusReasonInvalid, message: err.Error()}
		}
		next, err := json.Marshal(merged.(*unstructured.Unstructured).Object)
		if err != nil {
			return &apiError{code: http.StatusInternalServerError, reason: metav1.StatusReasonInternalError, message: err.Error()}
		}
		var old *unstructured.Unstructured
		if !creating {
			old = live
		}
		p, aerr := s.prepare(r, rt, next, old)
		if aerr != nil {
			return aerr
		}
		keepTimesOfNoop(old, p.Object)
		if dry, aerr := dryRun(r); aerr != nil || dry {
			if aerr != nil {
				return aerr
			}
			if creating {
				return s.dryCreate(w, r, rt, p)
			}
			return s.dryUpdate(w, r, rt, old, p.Object, p.Warnings)
		}
		var stored *unstructured.Unstructured
		code := http.StatusOK
		if creating {
			stored, err = s.st.Create(p.Object)
			code = http.StatusCreated
			if err == nil {
				stored = s.afterCreate(rt.kind, stored)
			}
		} else {
			p.Object.SetResourceVersion(live.GetResourceVersion())
			stored, err = s.st.Update(p.Object)
		}
		if (errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrAlreadyExists)) && attempt < patchRetries {
			continue
		}
		if err != nil {
			return storeError(rt.kind, rt.name, err)
		}
		writeWarnings(w, p.Warnings)
		s.writeObject(w, r, rt.kind, code, stored.Object)
		return nil
	}
}
