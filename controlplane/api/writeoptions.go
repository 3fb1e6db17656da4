package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tide-run/tide/controlplane/registry"
)

// What every write (create, update, patch) does with its options, as the API server does:
//
//   - fieldValidation (Strict, Warn, Ignore; absent means Warn, the API server's default since Kubernetes 1.27;
//     kubectl sends Strict unless --validate says otherwise, because /openapi lists the parameter): Strict
//     refuses unknown and duplicate fields with the API server's words (400 `Service in version "v1" cannot be
//     handled as a Service: strict decoding error: unknown field "spec.x"`; a patch: 422 on the field "patch"),
//     Warn drops them with one `Warning:` header each, Ignore drops them silently.
//   - fieldManager, or else the User-Agent up to its first "/" (`kubectl-edit`, `kubectl-client-side-apply`,
//     `kubectl-patch`, ...; `kubectl` for other callers): structured-merge-diff's field manager records the
//     fields the write changed as an "Update" entry of that manager in metadata.managedFields, so a later
//     server-side apply of a field that an edit or a patch set conflicts as on a cluster, and --force-conflicts
//     takes it over. The entry records what the writer sent, before Knative's defaults (a cluster's defaulting
//     webhook also runs after the field manager), and no status (a subresource).

// writeOptions validates a write's query options with the API server's rules and messages (an Invalid
// CreateOptions/UpdateOptions/PatchOptions) and returns its field validation.
func writeOptions(r *http.Request) (registry.FieldValidation, *apiError) {
	q := r.URL.Query()
	kind := map[string]string{http.MethodPost: "CreateOptions", http.MethodPut: "UpdateOptions"}[r.Method]
	if kind == "" {
		kind = "PatchOptions"
	}
	fv := q.Get("fieldValidation")
	errs := metav1validation.ValidateFieldManager(q.Get("fieldManager"), field.NewPath("fieldManager"))
	errs = append(errs, metav1validation.ValidateFieldValidation(field.NewPath("fieldValidation"), fv)...)
	if len(errs) > 0 {
		return "", statusError(apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: kind}, "", errs))
	}
	if fv == "" {
		fv = metav1.FieldValidationWarn
	}
	return registry.FieldValidation(fv), nil
}

// statusError converts an apimachinery StatusError to the API's error.
func statusError(se *apierrors.StatusError) *apiError {
	st := se.Status()
	return &apiError{code: int(st.Code), reason: st.Reason, message: st.Message, details: st.Details}
}

// strictError words a *registry.StrictDecodingError as the API server does: a body that cannot be handled (create,
// update) or an invalid patch (patched is the patched object's JSON).
func strictError(se *registry.StrictDecodingError, patched []byte) *apiError {
	if patched != nil {
		return statusError(apierrors.NewInvalid(schema.GroupKind{}, "", field.ErrorList{
			field.Invalid(field.NewPath("patch"), string(patched), se.Error())}))
	}
	k := se.Kind
	return badRequest(k.Kind + " in version \"" + k.Version + "\" cannot be handled as a " + k.Kind + ": " + se.Error())
}

// managerOf is the request's field manager: fieldManager, or the User-Agent's product (before the first "/"),
// printable characters only, at most 128 bytes, as the API server derives it.
func managerOf(r *http.Request) string {
	if m := r.URL.Query().Get("fieldManager"); m != "" {
		return m
	}
	ua, _, _ := strings.Cut(r.UserAgent(), "/")
	var b bytes.Buffer
	for _, c := range ua {
		if !unicode.IsPrint(c) {
			continue
		}
		if b.Len()+utf8.RuneLen(c) > metav1validation.FieldManagerMaxLength {
			break
		}
		b.WriteRune(c)
	}
	return b.String()
}

// recordUpdate sets p.Object's managedFields: the live object's (nil on create) plus an "Update" entry for the
// request's manager over the fields the write changed (p.Decoded against live, both without status).
func (s *Server) recordUpdate(r *http.Request, rt route, live *unstructured.Unstructured, p *registry.Prepared) {
	if p.Decoded == nil {
		return
	}
	fm, err := s.fieldManagerFor(rt.kind)
	if err != nil {
		s.log.Warn("managedFields not recorded", "kind", rt.kind.GroupKind(), "err", err)
		return
	}
	gvk := schema.GroupVersionKind{Group: rt.kind.Group, Version: rt.kind.Version, Kind: rt.kind.Kind}
	liveObj := &unstructured.Unstructured{Object: map[string]any{}}
	if live != nil {
		liveObj = live.DeepCopy()
	}
	liveObj.SetGroupVersionKind(gvk)
	newObj := &unstructured.Unstructured{Object: runtime.DeepCopyJSON(p.Decoded)}
	newObj.SetGroupVersionKind(gvk)
	newObj.SetName(p.Object.GetName())
	newObj.SetNamespace(p.Object.GetNamespace())
	delete(liveObj.Object, "status")
	delete(newObj.Object, "status")
	out, err := fm.Update(liveObj, newObj, managerOf(r))
	if err != nil {
		// The API server drops managedFields then ("should not happen"); keeping the live ones loses less.
		s.log.Warn("managedFields not updated", "kind", rt.kind.GroupKind(), "name", p.Object.GetName(), "err", err)
		if live != nil {
			p.Object.SetManagedFields(live.GetManagedFields())
		}
		return
	}
	mf := out.(*unstructured.Unstructured).GetManagedFields()
	if len(mf) == 0 {
		unstructured.RemoveNestedField(p.Object.Object, "metadata", "managedFields")
		return
	}
	p.Object.SetManagedFields(mf)
	keepTimesOfNoop(live, p.Object)
}

// storedPart is what an update stores of u besides managedFields, as JSON (numbers compare the same whether decoded
// as float64 or int64).
func storedPart(u *unstructured.Unstructured) []byte {
	m := map[string]any{"labels": u.GetLabels(), "annotations": u.GetAnnotations(), "ownerReferences": u.GetOwnerReferences(),
		"finalizers": u.GetFinalizers()}
	for k, v := range u.Object {
		if k != "metadata" && k != "status" {
			m["."+k] = v
		}
	}
	b, _ := json.Marshal(m)
	return b
}

// keepTimesOfNoop gives next live's managedFields when they differ only in timestamps and next stores nothing
// else new (kube-apiserver's IgnoreManagedFieldsTimestampsTransformer): re-applying an unchanged document, whose
// atomic lists differ from the defaulted live ones until defaults run again, is no write.
func keepTimesOfNoop(live, next *unstructured.Unstructured) {
	if live == nil {
		return
	}
	a, b := live.GetManagedFields(), next.GetManagedFields()
	if len(a) != len(b) {
		return
	}
	for i := range a {
		x, y := a[i], b[i]
		x.Time, y.Time = nil, nil
		if !equality.Semantic.DeepEqual(x, y) {
			return
		}
	}
	if !bytes.Equal(storedPart(live), storedPart(next)) {
		return
	}
	next.SetManagedFields(a)
}

// asStrict reports whether err is a registry.StrictDecodingError.
func asStrict(err error) (*registry.StrictDecodingError, bool) {
	var se *registry.StrictDecodingError
	ok := errors.As(err, &se)
	return se, ok
}
