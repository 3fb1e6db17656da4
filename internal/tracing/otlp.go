package tracing

import (
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tide-run/tide/internal/tracing/traceapi"
)

// OTLPTracesPath is where OTLP/HTTP exporters post spans: an SDK given OTEL_EXPORTER_OTLP_ENDPOINT=http://<api>
// appends it. Mounting the receiver there lets any program instrumented with OpenTelemetry put its own spans into
// the traces tide keeps in memory, with the standard exporter and no collector.
const OTLPTracesPath = "/v1/traces"

// maxOTLPBytes bounds one export request, before and after gzip (the collector's default limit is larger, but an
// SDK's batch of 512 spans stays well under it).
const maxOTLPBytes = 8 << 20

// OTLPHandler receives OTLP/HTTP trace exports (POST OTLPTracesPath) into s, as the OpenTelemetry Collector's
// OTLP receiver does: binary protobuf (application/x-protobuf, the SDKs' default) or JSON (application/json, with
// hex trace and span ids as the OTLP spec encodes them), optionally gzip-compressed. It answers 200 with an empty
// ExportTraceServiceResponse in the request's encoding; 400 for a body it cannot decode (an SDK does not retry
// that), 413 over 8 MiB, 415 for other media types, and 503 when tracing is disabled. Spans with invalid ids are
// dropped, and counted in the response's partial_success as the spec asks.
func OTLPHandler(s *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed: OTLP exporters POST spans here", http.StatusMethodNotAllowed)
			return
		}
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt != "application/x-protobuf" && mt != "application/json" {
			http.Error(w, "Content-Type "+strconv.Quote(mt)+": OTLP/HTTP takes application/x-protobuf or application/json",
				http.StatusUnsupportedMediaType)
			return
		}
		body, err := readOTLPBody(w, r)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) || errors.Is(err, errOTLPTooLarge) {
				http.Error(w, "export request larger than 8 MiB: lower the exporter's batch size", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "reading the export request: "+err.Error(), http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if mt == "application/json" {
			err = unmarshalOTLPJSON(body, &req)
		} else {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil {
			http.Error(w, "decoding the ExportTraceServiceRequest: "+err.Error(), http.StatusBadRequest)
			return
		}
		if s == nil {
			http.Error(w, "tracing is disabled (OTEL_SDK_DISABLED=true): no span is kept", http.StatusServiceUnavailable)
			return
		}
		var resp coltracepb.ExportTraceServiceResponse
		if rejected := ingestOTLP(s, &req); rejected > 0 {
			resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{RejectedSpans: rejected,
				ErrorMessage: "spans with an invalid trace or span id, or no name, were dropped"}
		}
		var out []byte
		if mt == "application/json" {
			out, _ = protojson.Marshal(&resp)
		} else {
			out, _ = proto.Marshal(&resp)
		}
		w.Header().Set("Content-Type", mt)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
	})
}

var errOTLPTooLarge = errors.New("export request too large")

// readOTLPBody reads the body, inflating gzip, within maxOTLPBytes both ways (a small gzip bomb stays small).
func readOTLPBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var rd io.Reader = http.MaxBytesReader(w, r.Body, maxOTLPBytes)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		rd = zr
	default:
		return nil, fmt.Errorf("Content-Encoding %q: want gzip or none", enc)
	}
	b, err := io.ReadAll(io.LimitReader(rd, maxOTLPBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxOTLPBytes {
		return nil, errOTLPTooLarge
	}
	return b, nil
}

// ingestOTLP adds every valid span of req to s and returns how many were dropped.
func ingestOTLP(s *Store, req *coltracepb.ExportTraceServiceRequest) (rejected int64) {
	for _, rs := range req.GetResourceSpans() {
		service := "external"
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				if v := anyValueString(kv.GetValue()); v != "" {
					service = v
				}
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				out, ok := otlpSpan(sp, service)
				if !ok {
					rejected++
					continue
				}
				s.Add(out)
			}
		}
	}
	return rejected
}

// otlpSpan converts one OTLP span; ok is false when its ids or name are not usable.
func otlpSpan(sp *tracepb.Span, service string) (traceapi.Span, bool) {
	out := traceapi.Span{
		TraceID: hex.EncodeToString(sp.GetTraceId()),
		SpanID:  hex.EncodeToString(sp.GetSpanId()),
		Name:    sp.GetName(),
		Service: service,
		Start:   time.Unix(0, int64(sp.GetStartTimeUnixNano())).UTC(),
		End:     time.Unix(0, int64(sp.GetEndTimeUnixNano())).UTC(),
	}
	if p := sp.GetParentSpanId(); len(p) > 0 {
		out.ParentSpanID = hex.EncodeToString(p)
	}
	switch sp.GetKind() {
	case tracepb.Span_SPAN_KIND_SERVER:
		out.Kind = "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		out.Kind = "client"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		out.Kind = "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		out.Kind = "consumer"
	default:
		out.Kind = "internal"
	}
	switch sp.GetStatus().GetCode() {
	case tracepb.Status_STATUS_CODE_OK:
		out.Status = "ok"
	case tracepb.Status_STATUS_CODE_ERROR:
		out.Status, out.StatusMessage = "error", sp.GetStatus().GetMessage()
	default:
		out.Status = "unset"
	}
	out.Attributes = otlpAttrs(sp.GetAttributes())
	for _, ev := range sp.GetEvents() {
		out.Events = append(out.Events, traceapi.Event{Name: ev.GetName(),
			Time: time.Unix(0, int64(ev.GetTimeUnixNano())).UTC(), Attributes: otlpAttrs(ev.GetAttributes())})
	}
	for _, l := range sp.GetLinks() {
		out.Links = append(out.Links, traceapi.Link{TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId())})
	}
	if out.End.Before(out.Start) {
		out.End = out.Start
	}
	// The same checks as a posted span (ids, name, kind); it also lower-cases and defaults.
	if err := checkPosted(&out); err != nil {
		return traceapi.Span{}, false
	}
	return out, true
}

func otlpAttrs(kvs []*commonpb.KeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = anyValueString(kv.GetValue())
	}
	return m
}

// anyValueString renders an attribute value as the trace view shows values: scalars as text, arrays and maps as
// JSON.
func anyValueString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_BytesValue:
		return hex.EncodeToString(x.BytesValue)
	case nil:
		return ""
	default:
		b, _ := protojson.Marshal(v)
		return string(b)
	}
}

// unmarshalOTLPJSON decodes OTLP's JSON encoding. It is protobuf's JSON mapping except that trace and span ids
// are hex strings, not base64 (OTLP specification, "JSON Protobuf Encoding"), so the ids are rewritten to base64
// before protojson reads the message.
func unmarshalOTLPJSON(b []byte, req *coltracepb.ExportTraceServiceRequest) error {
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	if err := hexIDsToBase64(doc); err != nil {
		return err
	}
	nb, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(nb, req)
}

// idFields are the OTLP JSON fields holding hex ids, wherever they appear (spans, links).
var idFields = map[string]bool{"traceId": true, "spanId": true, "parentSpanId": true}

func hexIDsToBase64(v any) error {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && idFields[k] {
				if s == "" {
					continue
				}
				raw, err := hex.DecodeString(s)
				if err != nil {
					return fmt.Errorf("%s %q: want hexadecimal digits (OTLP JSON encodes ids in hex)", k, s)
				}
				x[k] = raw // encoding/json writes []byte as base64, which protojson reads
				continue
			}
			if err := hexIDsToBase64(val); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := hexIDsToBase64(e); err != nil {
				return err
			}
		}
	}
	return nil
}
