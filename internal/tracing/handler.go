package tracing

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/tide-run/tide/internal/tracing/traceapi"
)

// Handler serves the store on the API (mount it at traceapi.TracesPath and TracesPath + "/{id}", and under other
// paths with an {id} wildcard, e.g. the dashboard's /dashboard/api/traces/{id}):
//
//	GET /tide/v1/traces[?attr=KEY[=VALUE]][&name=SPAN][&limit=N]  -> traceapi.List, newest first
//	GET /tide/v1/traces/{traceID}                                 -> traceapi.Trace, 404 when not held
//
// A nil store (tracing disabled) lists nothing with enabled=false and answers 404 for any trace.
func Handler(s *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
			return
		}
		// The trace ID is the {id} of the pattern the handler is mounted with, else what follows TracesPath.
		rest := r.PathValue("id")
		if rest == "" && strings.HasPrefix(r.URL.Path, traceapi.TracesPath+"/") {
			rest = strings.Trim(strings.TrimPrefix(r.URL.Path, traceapi.TracesPath), "/")
		}
		if rest == "" {
			q := Query{}
			if a := r.URL.Query().Get("attr"); a != "" {
				q.Attr, q.AttrValue, _ = strings.Cut(a, "=")
			}
			q.Name = r.URL.Query().Get("name")
			if l := r.URL.Query().Get("limit"); l != "" {
				n, err := strconv.Atoi(l)
				if err != nil || n <= 0 {
					http.Error(w, "query parameter limit: want a positive integer, got "+strconv.Quote(l), http.StatusBadRequest)
					return
				}
				q.Limit = n
			}
			out := traceapi.List{Traces: []traceapi.Summary{}}
			if s != nil {
				out.Enabled, out.Capacity, out.Traces = true, s.Capacity(), s.List(q)
			}
			writeJSON(w, out)
			return
		}
		if strings.Contains(rest, "/") || len(rest) != 32 {
			http.Error(w, "trace ID "+strconv.Quote(rest)+": want 32 hexadecimal digits", http.StatusBadRequest)
			return
		}
		if s == nil {
			http.Error(w, "tracing is disabled (OTEL_SDK_DISABLED=true): no trace is kept", http.StatusNotFound)
			return
		}
		t, ok := s.Trace(rest)
		if !ok {
			http.Error(w, "trace "+rest+" is not in memory (never recorded, or older than the last "+
				strconv.Itoa(s.Capacity())+" spans; set TIDE_TRACE_BUFFER to keep more)", http.StatusNotFound)
			return
		}
		writeJSON(w, t)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
