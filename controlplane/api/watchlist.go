package api

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
)

// What client-go's informers and kubectl's get -w ask of a list or watch beyond a label selector: field
// selectors (kubectl describe lists an object's events with involvedObject.* fields), the watch-list protocol
// (sendInitialEvents=true: the current objects as ADDED, then a BOOKMARK annotated k8s.io/initial-events-end;
// client-go 1.35's reflectors start this way), and timeoutSeconds (a watch ends after it, and the client
// re-watches from the last resourceVersion it saw).

// selector is a request's label and field selectors.
type selector struct {
	labels labels.Selector
	fields fields.Selector
}

func selectorsOf(q url.Values) (selector, *apiError) {
	ls, aerr := selectorOf(q)
	if aerr != nil {
		return selector{}, aerr
	}
	fs, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		return selector{}, badRequest("invalid fieldSelector: " + err.Error())
	}
	return selector{labels: ls, fields: fs}, nil
}

// matches applies both selectors; a field is a dotted path into the object ("metadata.name",
// "involvedObject.uid"), compared as text.
func (s selector) matches(o *unstructured.Unstructured) bool {
	if !s.labels.Matches(labels.Set(o.GetLabels())) {
		return false
	}
	if s.fields.Empty() {
		return true
	}
	set := fields.Set{}
	for _, req := range s.fields.Requirements() {
		v, found, _ := unstructured.NestedFieldNoCopy(o.Object, strings.Split(req.Field, ".")...)
		if found && v != nil {
			set[req.Field] = fmt.Sprint(v)
		} else {
			set[req.Field] = ""
		}
	}
	return s.fields.Matches(set)
}

// watchTimeout is the request's timeoutSeconds (0: none).
func watchTimeout(q url.Values) time.Duration {
	n, err := strconv.ParseInt(q.Get("timeoutSeconds"), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// initialEventsEnd is the BOOKMARK that ends the initial events of a watch-list stream.
func initialEventsEnd(apiVersion, kind string, rv uint64) map[string]any {
	return map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{
		"resourceVersion": strconv.FormatUint(rv, 10),
		"annotations":     map[string]any{metav1.InitialEventsAnnotationKey: "true"},
	}}
}

// bookmark is a periodic BOOKMARK: the resourceVersion the stream has reached.
func bookmark(apiVersion, kind string, rv uint64) map[string]any {
	return map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"resourceVersion": strconv.FormatUint(rv, 10)}}
}

func sendInitialEvents(q url.Values) bool { return q.Get("sendInitialEvents") == "true" }

func allowBookmarks(q url.Values) bool { return q.Get("allowWatchBookmarks") == "true" }
