package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"

	jsonpatch "github.com/evanphx/json-patch/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/store"
)

// Patch media types, as Kubernetes names them. kubectl sends merge patches for custom resources (every Knative
// kind: `kubectl apply`, `edit`, `label`, `annotate`, `patch --type merge`), strategic merge patches for the
// built-in kinds (Secret, ConfigMap, ...; refused with 415 for custom kinds, as a cluster does), JSON patches for
// `patch --type json`, and apply patches for `apply --server-side` (apply.go).
const (
	MergePatchType     = "application/merge-patch+json"
	JSONPatchType      = "application/json-patch+json"
	strategicPatchType = "application/strategic-merge-patch+json"
	applyPatchType     = "application/apply-patch+yaml"
)

// patchRetries bounds how often a patch is re-applied to a fresher object after a conflict. A patch that sets
// metadata.resourceVersion itself conflicts every time and ends in 409, as in Kubernetes; one that does not is
// applied to whatever is current, so concurrent writers do not make it fail.
const patchRetries = 20

// patch applies a merge or JSON patch to the current object (or its status, on the status subresource) and
// stores the result through the same defaulting, validation and conflict checks as an update.
func (s *Server) patch(w http.ResponseWriter, r *http.Request, rt route) *apiError {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case MergePatchType, JSONPatchType:
	case strategicPatchType:
		if !strategicKind(rt.kind) {
			return unsupportedPatch(mt, "strategic merge patch applies to Kubernetes' built-in kinds, not to "+resourceName(rt.kind))
		}
	case applyPatchType:
		return s.applyPatch(w, r, rt)
	default:
		return unsupportedPatch(mt, "")
	}
	body, aerr := readBody(r)
	if aerr != nil {
		return aerr
	}
	var jp jsonpatch.Patch
	if mt == JSONPatchType {
		p, err := jsonpatch.DecodePatch(body)
		if err != nil {
			return badRequest("cannot decode the JSON patch: " + err.Error())
		}
		jp = p
	} else if !json.Valid(body) || len(body) == 0 || body[0] != '{' {
		return badRequest("cannot decode the merge patch: expected a JSON object")
	}
	for attempt := 0; ; attempt++ {
		old, err := s.st.Get(rt.kind.StorageGroupKind(), rt.namespace, rt.name)
		if err != nil {
			return storeError(rt.kind, rt.name, err)
		}
		cur, err := json.Marshal(old.Object)
		if err != nil {
			return &apiError{code: http.StatusInternalServerError, reason: metav1.StatusReasonInternalError, message: err.Error()}
		}
		var next []byte
		switch {
		case jp != nil:
			next, err = jp.Apply(cur)
		case mt == strategicPatchType:
			next, err = strategicMerge(rt.kind, cur, body)
		default:
			next, err = jsonpatch.MergePatch(cur, body)
		}
		if err != nil {
			return &apiError{code: http.StatusUnprocessableEntity, reason: metav1.StatusReasonInvalid,
				message: fmt.Sprintf("the patch cannot be applied to %s %q: %v", resourceName(rt.kind), rt.name, err)}
		}
		var obj *unstructured.Unstructured
		var warnings []string
		if rt.status {
			obj, aerr = s.patchedStatus(rt, next)
		} else {
			obj, warnings, aerr = s.patchedObject(r, rt, next, old)
		}
		if aerr != nil {
			return aerr
		}
		if dry, aerr := dryRun(r); aerr != nil || dry {
			if aerr != nil {
				return aerr
			}
			return s.dryUpdate(w, r, rt, old, obj, warnings)
		}
		var stored *unstructured.Unstructured
		if rt.status {
			stored, err = s.st.UpdateStatus(obj)
		} else {
			stored, err = s.st.Update(obj)
		}
		if errors.Is(err, store.ErrConflict) && attempt < patchRetries {
			continue
		}
		if err != nil {
			return storeError(rt.kind, rt.name, err)
		}
		writeWarnings(w, warnings)
		s.writeObject(w, r, rt.kind, http.StatusOK, stored.Object)
		return nil
	}
}

// patchedObject runs a patched object through Prepare like an update body; a patch may not rename the object.
func (s *Server) patchedObject(r *http.Request, rt route, next []byte, old *unstructured.Unstructured) (*unstructured.Unstructured, []string, *apiError) {
	p, aerr := s.prepare(r, rt, next, old)
	if aerr != nil {
		return nil, nil, aerr
	}
	if p.Object.GetName() != rt.name {
		return nil, nil, badRequest(fmt.Sprintf("the patch changes metadata.name to %q; the name on the URL is %q", p.Object.GetName(), rt.name))
	}
	s.recordUpdate(r, rt, old, p)
	return p.Object, p.Warnings, nil
}

// patchedStatus checks a patched object for the status subresource (kind and name unchanged).
func (s *Server) patchedStatus(rt route, next []byte) (*unstructured.Unstructured, *apiError) {
	in := &unstructured.Unstructured{}
	if err := in.UnmarshalJSON(next); err != nil {
		return nil, badRequest("the patched object cannot be decoded: " + err.Error())
	}
	if in.GetName() != rt.name || store.GroupKindOf(in.GetAPIVersion(), in.GetKind()) != rt.kind.StorageGroupKind() {
		return nil, badRequest("the patch changes the object's kind or name")
	}
	in.SetNamespace(rt.namespace)
	return in, nil
}

func unsupportedPatch(mt, why string) *apiError {
	if mt == "" {
		mt = "no Content-Type"
	}
	msg := fmt.Sprintf("the body of the request was in an unknown format (%s); accepted patch formats: %s, %s", mt, MergePatchType, JSONPatchType)
	if why != "" {
		msg = fmt.Sprintf("%s is not supported: %s; send %s (kubectl patch --type merge) or %s (--type json)", mt, why, MergePatchType, JSONPatchType)
	}
	return &apiError{code: http.StatusUnsupportedMediaType, reason: metav1.StatusReasonUnsupportedMediaType, message: msg}
}
