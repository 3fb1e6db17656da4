package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/tide-run/tide/controlplane/store"
	"github.com/tide-run/tide/serving/process"
	servingrec "github.com/tide-run/tide/serving/reconciler"
)

// Log paths on the API, in the shape of Kubernetes' pods/{name}/log subresource. Mount them with
// api.Server.Handle(pattern, rt.LogsHandler()).
const (
	RevisionLogPattern = "GET /apis/serving.knative.dev/v1/namespaces/{namespace}/revisions/{name}/log"
	ServiceLogPattern  = "GET /apis/serving.knative.dev/v1/namespaces/{namespace}/services/{name}/log"
)

// LogEntry is one line of the log stream: a JSON object per line (application/x-ndjson).
type LogEntry struct {
	Time     time.Time      `json:"time"`
	Revision string         `json:"revision"`
	Instance string         `json:"instance"`
	Stream   process.Stream `json:"stream"`
	Text     string         `json:"text"`
}

// DefaultTailLines is how many lines a log request returns without tailLines.
const DefaultTailLines = 1000

// LogsHandler serves instance logs: RevisionLogPattern for one revision, ServiceLogPattern for every revision of
// a Service (or ?revision=R). Query parameters: tailLines=N (default 1000), follow=true (stream new lines until
// the client goes away), instance=ID.
func (rt *Runtime) LogsHandler() http.Handler {
	return http.HandlerFunc(rt.serveLogs)
}

func (rt *Runtime) serveLogs(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	q := r.URL.Query()
	tail := DefaultTailLines
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeStatus(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("tailLines: %q is not a non-negative integer", v))
			return
		}
		tail = n
	}
	follow := q.Get("follow") == "true" || q.Get("follow") == "1"
	instance := q.Get("instance")
	isService := r.Pattern == ServiceLogPattern
	revFilter := q.Get("revision")
	if !isService {
		revFilter = name
	}
	gk := servingrec.RevisionGK
	kind := "revisions.serving.knative.dev"
	if isService {
		gk, kind = servingrec.ServiceGK, "services.serving.knative.dev"
	}
	if _, err := rt.st.Get(gk, ns, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			writeStatus(w, http.StatusNotFound, "NotFound", fmt.Sprintf("%s %q not found", kind, name))
		} else {
			writeStatus(w, http.StatusInternalServerError, "InternalError", err.Error())
		}
		return
	}
	match := func(rv *revision) bool {
		if rv.key.Namespace != ns {
			return false
		}
		if revFilter != "" {
			return rv.key.Name == revFilter && (!isService || rv.service == name)
		}
		return rv.service == name
	}
	pools := func() map[types.NamespacedName]*process.Pool {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		out := map[types.NamespacedName]*process.Pool{}
		for k, rv := range rt.revs {
			if match(rv) {
				out[k] = rv.pool
			}
		}
		return out
	}

	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)

	// Subscribe before taking the tail, so nothing printed in between is missed; lines that show up in both are
	// skipped once.
	lines := make(chan LogEntry, 4096)
	subscribed := map[types.NamespacedName]func(){}
	defer func() {
		for _, c := range subscribed {
			c()
		}
	}()
	subscribe := func(k types.NamespacedName, p *process.Pool) {
		if !follow || subscribed[k] != nil {
			return
		}
		rev := k.Name
		subscribed[k] = p.FollowLogs(func(l process.LogLine) {
			if instance != "" && l.Instance != instance {
				return
			}
			select {
			case lines <- LogEntry{Time: l.Time, Revision: rev, Instance: l.Instance, Stream: l.Stream, Text: l.Text}:
			default:
				// A client too slow to read loses lines rather than slowing the program down.
			}
		})
	}
	var all []LogEntry
	for k, p := range pools() {
		subscribe(k, p)
		for _, l := range p.Logs(tail, instance) {
			all = append(all, LogEntry{Time: l.Time, Revision: k.Name, Instance: l.Instance, Stream: l.Stream, Text: l.Text})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	if len(all) > tail {
		all = all[len(all)-tail:]
	}
	seen := map[LogEntry]int{}
	for _, e := range all {
		if follow {
			seen[e]++
		}
		_ = enc.Encode(e)
	}
	if flusher != nil {
		flusher.Flush()
	}
	if !follow {
		return
	}
	rescan := time.NewTicker(time.Second)
	defer rescan.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-rt.stop:
			return
		case <-rescan.C:
			for k, p := range pools() { // revisions created while following
				subscribe(k, p)
			}
		case e := <-lines:
			if seen[e] > 0 {
				seen[e]--
				continue
			}
			if err := enc.Encode(e); err != nil {
				return
			}
			if flusher != nil && len(lines) == 0 {
				flusher.Flush()
			}
		}
	}
}

// writeStatus answers with a Kubernetes Status object, which the API client turns into a StatusError.
func writeStatus(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": msg, "reason": reason, "code": code})
}
