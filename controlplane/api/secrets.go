package api

import (
	"fmt"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tide-run/tide/controlplane/registry"
)

// RedactedAnnotation marks a Secret served to an anonymous caller with its values taken out. A document carrying
// it is refused on create and update, so a redacted copy written back cannot wipe the real values.
const RedactedAnnotation = "tide.run/redacted"

// secretKind: the core Secret, whose data and stringData are credentials.
func secretKind(k registry.Kind) bool { return k.Group == "" && k.Kind == "Secret" }

// redactedWarning tells kubectl and the CLI (which print Warning headers) why the values are missing.
const redactedWarning = "Secret values are hidden from requests without the API token: data and stringData are " +
	"left out. Use `tide --token` or $TIDE_TOKEN (the token is in <data-dir>/api-token), or a kubeconfig token"

// visible returns obj as the caller may see it: a Secret without its values for an anonymous caller (Kubernetes
// serves no Secret to an anonymous user; tide, which lets anonymous loopback callers in, serves its metadata
// only), anything else unchanged. obj itself is not modified.
func (s *Server) visible(r *http.Request, k registry.Kind, obj map[string]any) map[string]any {
	if !secretKind(k) || PrincipalOf(r).Authenticated {
		return obj
	}
	out := make(map[string]any, len(obj))
	for key, v := range obj {
		out[key] = v
	}
	delete(out, "data")
	delete(out, "stringData")
	meta, _ := obj["metadata"].(map[string]any)
	m := make(map[string]any, len(meta)+1)
	for key, v := range meta {
		m[key] = v
	}
	ann := map[string]any{}
	if old, ok := meta["annotations"].(map[string]any); ok {
		for key, v := range old {
			ann[key] = v
		}
	}
	ann[RedactedAnnotation] = "data"
	m["annotations"] = ann
	out["metadata"] = m
	return out
}

// warnRedacted adds the Warning header when a Secret answer to an anonymous caller had its values removed.
func (s *Server) warnRedacted(w http.ResponseWriter, r *http.Request, k registry.Kind) {
	if secretKind(k) && !PrincipalOf(r).Authenticated {
		writeWarnings(w, []string{redactedWarning})
	}
}

// writeObject answers one object, as the caller may see it.
func (s *Server) writeObject(w http.ResponseWriter, r *http.Request, k registry.Kind, code int, obj map[string]any) {
	s.warnRedacted(w, r, k)
	writeJSON(w, code, s.visible(r, k, obj))
}

// refuseRedacted refuses a Secret document that is a redacted copy (see RedactedAnnotation).
func refuseRedacted(k registry.Kind, name string, annotations map[string]string) *apiError {
	if !secretKind(k) {
		return nil
	}
	if _, ok := annotations[RedactedAnnotation]; !ok {
		return nil
	}
	field := "metadata.annotations[" + RedactedAnnotation + "]"
	return &apiError{code: http.StatusUnprocessableEntity, reason: metav1.StatusReasonInvalid,
		message: fmt.Sprintf("Secret %q is invalid: %s: Forbidden: this is a copy read without the API token, its values "+
			"left out; write the original document (or remove the annotation and set data)", name, field),
		details: &metav1.StatusDetails{Name: name, Kind: k.Plural, Causes: []metav1.StatusCause{{
			Type: metav1.CauseTypeForbidden, Field: field, Message: "Forbidden: a redacted copy cannot be written"}}}}
}
