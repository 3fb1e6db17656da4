package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tide-run/tide/controlplane/registry"
	"github.com/tide-run/tide/controlplane/store"
)

// apiError becomes a metav1.Status response.
type apiError struct {
	code    int
	reason  metav1.StatusReason
	message string
	details *metav1.StatusDetails
}

func writeError(w http.ResponseWriter, e *apiError) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Message: e.message, Reason: e.reason, Code: int32(e.code), Details: e.details,
	}
	writeJSON(w, e.code, st)
}

func badRequest(msg string) *apiError {
	return &apiError{code: http.StatusBadRequest, reason: metav1.StatusReasonBadRequest, message: msg}
}

// notFoundPath is Kubernetes' 404 for a path it does not serve, naming the path after a colon when there is one.
func notFoundPath(path string) *apiError {
	msg := "the server could not find the requested resource"
	if path = strings.TrimSpace(path); path != "" {
		msg += ": " + path
	}
	return &apiError{code: http.StatusNotFound, reason: metav1.StatusReasonNotFound, message: msg}
}

// storeError maps store sentinels to Kubernetes statuses, with kubectl's message shapes.
func storeError(k registry.Kind, name string, err error) *apiError {
	details := &metav1.StatusDetails{Name: name, Group: k.Group, Kind: k.Plural}
	res := resourceName(k)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &apiError{code: http.StatusNotFound, reason: metav1.StatusReasonNotFound, details: details,
			message: fmt.Sprintf("%s %q not found", res, name)}
	case errors.Is(err, store.ErrAlreadyExists):
		return &apiError{code: http.StatusConflict, reason: metav1.StatusReasonAlreadyExists, details: details,
			message: fmt.Sprintf("%s %q already exists", res, name)}
	case errors.Is(err, store.ErrConflict):
		return &apiError{code: http.StatusConflict, reason: metav1.StatusReasonConflict, details: details,
			message: fmt.Sprintf("Operation cannot be fulfilled on %s %q: the object has been modified; please apply your changes to the latest version and try again", res, name)}
	case errors.Is(err, store.ErrInvalid):
		var ie *store.InvalidError
		if errors.As(err, &ie) {
			for _, fe := range ie.Errs {
				details.Causes = append(details.Causes, metav1.StatusCause{Type: metav1.CauseType(fe.Type), Field: fe.Field, Message: fe.ErrorBody()})
			}
		}
		return &apiError{code: http.StatusUnprocessableEntity, reason: metav1.StatusReasonInvalid, details: details, message: err.Error()}
	case errors.Is(err, store.ErrGone):
		return &apiError{code: http.StatusGone, reason: metav1.StatusReasonExpired, message: err.Error()}
	default:
		return &apiError{code: http.StatusInternalServerError, reason: metav1.StatusReasonInternalError, message: err.Error()}
	}
}

// prepareError maps registry errors: an invalid document is 422 Invalid with one cause per field path.
func prepareError(err error) *apiError {
	var ie *registry.InvalidError
	if errors.As(err, &ie) {
		d := &metav1.StatusDetails{Name: ie.Name, Kind: ie.Kind}
		for _, c := range ie.Causes {
			d.Causes = append(d.Causes, metav1.StatusCause{Type: metav1.CauseTypeFieldValueInvalid, Field: c.Field, Message: c.Message})
		}
		return &apiError{code: http.StatusUnprocessableEntity, reason: metav1.StatusReasonInvalid, message: ie.Error(), details: d}
	}
	if errors.Is(err, registry.ErrUnknownKind) {
		return &apiError{code: http.StatusBadRequest, reason: metav1.StatusReasonBadRequest, message: err.Error()}
	}
	return badRequest(err.Error())
}
