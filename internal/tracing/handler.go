package tracing

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/internal/tracing/traceapi"
)

// Handler serves the store on the API (mount it at traceapi.TracesPath and TracesPath + "/{id}", and under other
// paths with an {id} wildcard, e.g. the dashboard's /dashboard/api/traces/{id}):
//
//	GET /tide/v1/traces[?attr=KEY[=VALUE]][&name=SPAN][&limit=N]  -> traceapi.List, newest first
//	GET /tide/v1/traces/{traceID}                                 -> traceapi.Trace, 404 when not held
//	POST /tide/v1/traces  traceapi.Spans (application/json)        -> 202: a program's own spans join the store
//
// A nil store (tracing disabled) lists nothing with enabled=false and answers 404 for any trace.
func Handler(s *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.PathValue("id") == "" {
			servePost(w, r, s)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD, POST")
			http.Error(w, "method not allowed: use GET (or POST spans to the collection)", http.StatusMethodNotAllowed)
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

// maxPostBytes bounds a POST body.
const maxPostBytes = 4 << 20

// servePost takes spans a program recorded (traceapi.Spans) into the store: 202 with the count kept, 400 naming
// the first bad span (nothing is kept then), 413 over 4 MiB or MaxPostedSpans spans.
func servePost(w http.ResponseWriter, r *http.Request, s *Store) {
	var body traceapi.Spans
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPostBytes))
	if err := dec.Decode(&body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "body larger than 4 MiB: post fewer spans at a time", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "body: want {\"spans\": [...]} (traceapi.Spans): "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body.Spans) > traceapi.MaxPostedSpans {
		http.Error(w, "more than "+strconv.Itoa(traceapi.MaxPostedSpans)+" spans in one request", http.StatusRequestEntityTooLarge)
		return
	}
	for i := range body.Spans {
		if err := checkPosted(&body.Spans[i]); err != nil {
			http.Error(w, "spans["+strconv.Itoa(i)+"]."+err.Error(), http.StatusBadRequest)
			return
		}
	}
	if s == nil {
		http.Error(w, "tracing is disabled (OTEL_SDK_DISABLED=true): no span is kept", http.StatusServiceUnavailable)
		return
	}
	for _, sp := range body.Spans {
		s.Add(sp)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]int{"accepted": len(body.Spans)})
}

// checkPosted validates and normalises one posted span.
func checkPosted(sp *traceapi.Span) error {
	sp.TraceID, sp.SpanID, sp.ParentSpanID = strings.ToLower(sp.TraceID), strings.ToLower(sp.SpanID), strings.ToLower(sp.ParentSpanID)
	if tid, err := trace.TraceIDFromHex(sp.TraceID); err != nil || !tid.IsValid() {
		return errors.New("traceId: want 32 hexadecimal digits, not all zero")
	}
	if sid, err := trace.SpanIDFromHex(sp.SpanID); err != nil || !sid.IsValid() {
		return errors.New("spanId: want 16 hexadecimal digits, not all zero")
	}
	if sp.ParentSpanID != "" {
		if _, err := trace.SpanIDFromHex(sp.ParentSpanID); err != nil {
			return errors.New("parentSpanId: want 16 hexadecimal digits or nothing")
		}
	}
	if strings.TrimSpace(sp.Name) == "" {
		return errors.New("name: required")
	}
	if sp.Start.IsZero() || sp.End.Before(sp.Start) {
		return errors.New("start, end: want RFC 3339 times with end not before start")
	}
	switch sp.Kind {
	case "":
		sp.Kind = "internal"
	case "internal", "server", "client", "producer", "consumer":
	default:
		return errors.New("kind: want internal, server, client, producer or consumer")
	}
	switch sp.Status {
	case "":
		sp.Status = "unset"
	case "unset", "ok", "error":
	default:
		return errors.New("status: want unset, ok or error")
	}
	if sp.Service == "" {
		sp.Service = "external"
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
