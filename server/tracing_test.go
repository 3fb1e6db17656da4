package server_test

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/tide-run/tide/internal/tracing"
	"github.com/tide-run/tide/server"
)

// otlpReceiver is a real OTLP/HTTP traces endpoint (POST /v1/traces, application/x-protobuf, optionally gzip), as
// a collector serves it, decoding with the OTLP protobuf types the exporter itself uses.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
	svc   map[string]string // span ID -> resource service.name
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{svc: map[string]string{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces application/x-protobuf", http.StatusBadRequest)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = gz
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var msg coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range msg.ResourceSpans {
			svc := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					svc = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					r.spans = append(r.spans, sp)
					r.svc[hex.EncodeToString(sp.SpanId)] = svc
				}
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

// trace returns the spans received for traceID (hex).
func (r *otlpReceiver) trace(traceID string) []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracepb.Span
	for _, sp := range r.spans {
		if hex.EncodeToString(sp.TraceId) == traceID {
			out = append(out, sp)
		}
	}
	return out
}

func spanAttr(sp *tracepb.Span, key string) string {
	for _, kv := range sp.Attributes {
		if kv.Key != key {
			continue
		}
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			return v.StringValue
		case *commonpb.AnyValue_IntValue:
			return fmt.Sprint(v.IntValue)
		case *commonpb.AnyValue_BoolValue:
			return fmt.Sprint(v.BoolValue)
		}
	}
	return ""
}

// headerRecorder is a subscriber that records each event with the traceparent header it came with.
type headerRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	got  []recorded
	done chan struct{}
}

type recorded struct {
	traceparent string
	ceTrace     string
	typ, data   string
}

func newHeaderRecorder(t *testing.T) *headerRecorder {
	r := &headerRecorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		e, err := binding.ToEvent(req.Context(), cehttp.NewMessageFromHttpRequest(req))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ce, _ := e.Extensions()["traceparent"].(string)
		r.mu.Lock()
		r.got = append(r.got, recorded{traceparent: req.Header.Get("Traceparent"), ceTrace: ce, typ: e.Type(), data: string(e.Data())})
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *headerRecorder) snapshot() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.got...)
}

// TestTraceAcrossEveryHop follows one message produced with the official RocketMQ client, carrying a W3C
// traceparent in its "traceparent" property as OpenTelemetry's RocketMQ instrumentation writes it, through a
// RocketMQSource, a Broker, a Trigger to a Knative Service (a real process behind the gateway) whose reply goes back
// through the Broker to a second Trigger: every span tide records is in the producer's trace, each hop the child of
// the one before, the instance's traceparent names the gateway's span, the spans reach an OTLP/HTTP receiver set
// with OTEL_EXPORTER_OTLP_ENDPOINT, and `tide trace ID` prints the tree from tide's in-memory store.
func TestTraceAcrossEveryHop(t *testing.T) {
	otlp := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	t.Setenv("OTEL_SERVICE_NAME", "tide-under-test")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := newPlatform(t, server.Options{DataDir: dir,
		Serving:  server.ServingOptions{BuildCacheDir: filepath.Join(dir, "build"), SourceDir: root},
		Eventing: server.EventingOptions{StatsInterval: 100 * time.Millisecond}})
	eventually(t, 15*time.Second, func() error {
		if !p.srv.Ready() {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	if got := p.srv.Tracing().Export(); !strings.HasPrefix(got, "otlp http ") {
		t.Fatalf("export %q: OTEL_EXPORTER_OTLP_ENDPOINT not honoured", got)
	}
	prod := newProducer(t, p.endpoint("rocketmq name server"))
	send(t, prod, "traced", "", "creates the topic")
	replies := newHeaderRecorder(t)
	p.apply(fmt.Sprintf(`
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: conf}
spec:
  template:
    spec:
      containers: [{image: "ko://github.com/tide-run/tide/test/apps/conformance"}]
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: to-service}
spec:
  broker: default
  filter: {attributes: {type: dev.knative.rocketmq.event}}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: conf}, uri: /reply-headers}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: replies}
spec:
  broker: default
  filter: {attributes: {type: dev.tide.conformance.headers}}
  subscriber: {uri: %s}
---
apiVersion: sources.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: traced}
spec:
  topic: traced
  initialOffset: latest
  sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}
`, replies.URL))
	p.waitReadyWithin("ksvc", "conf", "120s")
	p.waitReady("trigger", "to-service")
	p.waitReady("trigger", "replies")
	p.waitReady("rocketmqsource", "traced")

	// The producer's own span (what an instrumented producer records): tide never sees it, only its context.
	const traceID, producerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	// The source starts from the latest offset once its queues are assigned: send until a reply arrives.
	eventually(t, 60*time.Second, func() error {
		if len(replies.snapshot()) > 0 {
			return nil
		}
		m := primitive.NewMessage("traced", []byte(`{"order":123}`))
		m.WithProperty("traceparent", "00-"+traceID+"-"+producerSpan+"-01")
		m.WithKeys([]string{"order-123"})
		if res, err := prod.SendSync(context.Background(), m); err != nil || res.Status != primitive.SendOK {
			return fmt.Errorf("send: %v %v", res, err)
		}
		time.Sleep(500 * time.Millisecond)
		return fmt.Errorf("no reply yet")
	})
	reply := replies.snapshot()[0]
	// What the instance received, as its reply carries it.
	var seen struct {
		Headers map[string][]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(reply.data), &seen); err != nil {
		t.Fatalf("reply data %q: %v", reply.data, err)
	}
	instTP := first(seen.Headers["Traceparent"])
	instCE := first(seen.Headers["Ce-Traceparent"])
	if !strings.HasPrefix(instTP, "00-"+traceID+"-") || !strings.HasPrefix(instCE, "00-"+traceID+"-") {
		t.Fatalf("the instance saw traceparent %q, ce-traceparent %q; want trace %s", instTP, instCE, traceID)
	}
	if !strings.HasPrefix(reply.traceparent, "00-"+traceID+"-") || !strings.HasPrefix(reply.ceTrace, "00-"+traceID+"-") {
		t.Fatalf("the reply's subscriber saw traceparent %q, extension %q; want trace %s", reply.traceparent, reply.ceTrace, traceID)
	}

	// Every span of the chain at the OTLP receiver, one trace, each the child of the hop before.
	var chain map[string]*tracepb.Span
	eventually(t, 20*time.Second, func() error {
		_ = p.srv.Tracing().ForceFlush(context.Background())
		spans := otlp.trace(traceID)
		var err error
		chain, err = findChain(spans, producerSpan)
		return err
	})
	if got := otlp.svc[hex.EncodeToString(chain["source"].SpanId)]; got != "tide-under-test" {
		t.Errorf("service.name %q: OTEL_SERVICE_NAME not honoured", got)
	}
	gw := chain["gateway"]
	if want := hex.EncodeToString(gw.SpanId); !strings.Contains(instTP, "-"+want+"-") {
		t.Errorf("the instance's traceparent %s does not name the gateway's span %s", instTP, want)
	}
	if got := spanAttr(chain["source"], "messaging.system"); got != "rocketmq" {
		t.Errorf("source span messaging.system %q", got)
	}
	if got := spanAttr(chain["source"], "messaging.destination.name"); got != "traced" {
		t.Errorf("source span messaging.destination.name %q", got)
	}
	if got := spanAttr(chain["ingress"], "http.request.method"); got != "POST" {
		t.Errorf("ingress span http.request.method %q", got)
	}
	if got := spanAttr(gw, "tide.revision"); got != "default/conf-00001" {
		t.Errorf("gateway span tide.revision %q", got)
	}
	acquired := false
	for _, ev := range gw.Events {
		acquired = acquired || ev.Name == "instance acquired"
	}
	if !acquired {
		t.Errorf("gateway span has no 'instance acquired' event: %v", gw.Events)
	}
	if got := spanAttr(chain["trigger"], "tide.delivery.outcome"); got != "Delivered" {
		t.Errorf("trigger span tide.delivery.outcome %q", got)
	}

	// The same trace from tide's memory, through the CLI.
	out := p.mustRun("", "trace", traceID)
	for _, want := range []string{"trace " + traceID, "process traced", "send tide-broker-default_default",
		"process tide-broker-default_default", "POST /{namespace}/{broker}", "tide-under-test", "messaging.destination.name=traced"} {
		if !strings.Contains(out, want) {
			t.Errorf("tide trace output lacks %q:\n%s", want, out)
		}
	}
	list := p.mustRun("", "trace", "--attr", "messaging.rocketmq.message.keys=order-123")
	if !strings.Contains(list, traceID) {
		t.Errorf("tide trace --attr does not list the trace:\n%s", list)
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// findChain picks the spans of one event's path out of a trace and checks each one's parent:
// producer -> source (consumer) -> its POST (client) -> ingress (server) -> send (producer) -> Trigger to-service
// (consumer) -> its POST (client) -> gateway (server); and the reply: to-service -> send (producer) -> Trigger
// replies (consumer) -> its POST (client).
func findChain(spans []*tracepb.Span, producerSpan string) (map[string]*tracepb.Span, error) {
	parentOf := func(sp *tracepb.Span) string { return hex.EncodeToString(sp.ParentSpanId) }
	idOf := func(sp *tracepb.Span) string { return hex.EncodeToString(sp.SpanId) }
	childOf := func(parent *tracepb.Span, parentID string, kind tracepb.Span_SpanKind, pred func(*tracepb.Span) bool) *tracepb.Span {
		if parent != nil {
			parentID = idOf(parent)
		}
		for _, sp := range spans {
			if parentOf(sp) == parentID && sp.Kind == kind && (pred == nil || pred(sp)) {
				return sp
			}
		}
		return nil
	}
	c := map[string]*tracepb.Span{}
	steps := []struct {
		name, parent string
		kind         tracepb.Span_SpanKind
		pred         func(*tracepb.Span) bool
	}{
		{"source", "", tracepb.Span_SPAN_KIND_CONSUMER, func(s *tracepb.Span) bool { return s.Name == "process traced" }},
		{"source-post", "source", tracepb.Span_SPAN_KIND_CLIENT, nil},
		{"ingress", "source-post", tracepb.Span_SPAN_KIND_SERVER, nil},
		{"send", "ingress", tracepb.Span_SPAN_KIND_PRODUCER, nil},
		{"trigger", "send", tracepb.Span_SPAN_KIND_CONSUMER, func(s *tracepb.Span) bool {
			return spanAttr(s, "tide.trigger") == "default/to-service"
		}},
		{"trigger-post", "trigger", tracepb.Span_SPAN_KIND_CLIENT, nil},
		{"gateway", "trigger-post", tracepb.Span_SPAN_KIND_SERVER, nil},
		{"reply-send", "trigger", tracepb.Span_SPAN_KIND_PRODUCER, nil},
		{"replies", "reply-send", tracepb.Span_SPAN_KIND_CONSUMER, func(s *tracepb.Span) bool {
			return spanAttr(s, "tide.trigger") == "default/replies"
		}},
		{"replies-post", "replies", tracepb.Span_SPAN_KIND_CLIENT, nil},
	}
	for _, st := range steps {
		var sp *tracepb.Span
		if st.parent == "" {
			sp = childOf(nil, producerSpan, st.kind, st.pred)
		} else {
			sp = childOf(c[st.parent], "", st.kind, st.pred)
		}
		if sp == nil {
			var have []string
			for _, s := range spans {
				have = append(have, fmt.Sprintf("%s(%s<-%s)", s.Name, idOf(s), parentOf(s)))
			}
			return nil, fmt.Errorf("no %s span (%s) under %s; have %d spans: %s", st.name, st.kind, st.parent, len(spans), strings.Join(have, " "))
		}
		c[st.name] = sp
	}
	return c, nil
}

// TestIngressTraceparentReachesSubscriber: a W3C traceparent header sent to a Broker's ingress (and no
// ce-traceparent) reaches the Trigger's subscriber in its traceparent header and its distributed-tracing extension,
// in the same trace; with tracing on, as the Trigger's span under the ingress's; with tracing disabled, unchanged.
func TestIngressTraceparentReachesSubscriber(t *testing.T) {
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	const sent = "00-" + traceID + "-b7ad6b7169203331-01"
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint("tracing=", on), func(t *testing.T) {
			opts := server.Options{DataDir: t.TempDir(), Eventing: server.EventingOptions{StatsInterval: 100 * time.Millisecond}}
			if !on {
				opts.Tracing = tracing.Disabled()
			} else {
				tr, err := tracing.New(context.Background(), tracing.Options{Getenv: func(string) string { return "" }})
				if err != nil {
					t.Fatal(err)
				}
				opts.Tracing = tr
			}
			p := newPlatform(t, opts)
			eventually(t, 15*time.Second, func() error {
				if !p.srv.Ready() {
					return fmt.Errorf("not ready")
				}
				return nil
			})
			sub := newHeaderRecorder(t)
			p.apply(fmt.Sprintf(`
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: all}
spec:
  broker: default
  subscriber: {uri: %s}
`, sub.URL))
			p.waitReady("trigger", "all")
			eventually(t, 20*time.Second, func() error {
				if len(sub.snapshot()) > 0 {
					return nil
				}
				req, _ := http.NewRequest(http.MethodPost, p.endpoint("gateway")+"/default/default", strings.NewReader(`{}`))
				req.Header.Set("Ce-Specversion", "1.0")
				req.Header.Set("Ce-Id", "tp-1")
				req.Header.Set("Ce-Source", "/test")
				req.Header.Set("Ce-Type", "t")
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Traceparent", sent)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					return fmt.Errorf("POST: %d", resp.StatusCode)
				}
				time.Sleep(200 * time.Millisecond)
				return fmt.Errorf("not delivered yet")
			})
			got := sub.snapshot()[0]
			if !on {
				if got.traceparent != sent || got.ceTrace != sent {
					t.Fatalf("tracing off: subscriber saw traceparent %q, extension %q; want %q unchanged", got.traceparent, got.ceTrace, sent)
				}
				return
			}
			if !strings.HasPrefix(got.traceparent, "00-"+traceID+"-") || !strings.HasPrefix(got.ceTrace, "00-"+traceID+"-") || got.traceparent == sent {
				t.Fatalf("subscriber saw traceparent %q, extension %q; want new spans of trace %s", got.traceparent, got.ceTrace, traceID)
			}
			tr, ok := p.srv.Tracing().Store().Trace(traceID)
			if !ok {
				t.Fatal("trace not in memory")
			}
			names := map[string]string{} // span ID -> name
			parent := map[string]string{}
			for _, s := range tr.Spans {
				names[s.SpanID], parent[s.SpanID] = s.Name, s.ParentSpanID
			}
			// subscriber's parent: the Trigger's POST, under the Trigger's process span, under the send, under the
			// ingress's server span, whose parent is the sender's span.
			post := strings.Split(got.traceparent, "-")[2]
			chain := []string{names[post]}
			for id := parent[post]; id != "" && names[id] != ""; id = parent[id] {
				chain = append(chain, names[id])
			}
			want := []string{"POST", "process tide-broker-default_default", "send tide-broker-default_default", "POST /{namespace}/{broker}"}
			if fmt.Sprint(chain) != fmt.Sprint(want) {
				t.Fatalf("span chain from the subscriber up: %q, want %q", chain, want)
			}
			for _, s := range tr.Spans {
				if s.Name == "POST /{namespace}/{broker}" && s.ParentSpanID != "b7ad6b7169203331" {
					t.Fatalf("ingress span's parent %s, want the sender's span", s.ParentSpanID)
				}
			}
			// The dashboard's trace page and its data path.
			for path, want := range map[string]string{
				"/dashboard/traces":                                           "/dashboard/static/traces.js",
				server.DashboardTracesPath + "/" + traceID:                    `"name":"send tide-broker-default_default"`,
				server.DashboardTracesPath + "?attr=tide.trigger=default/all": traceID,
				"/tide/v1/traces/" + traceID:                                  `"traceId":"` + traceID + `"`,
			} {
				resp, err := http.Get(p.srv.APIURL() + path)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
					t.Errorf("GET %s: %d, body lacks %q:\n%.400s", path, resp.StatusCode, want, b)
				}
			}
		})
	}
}
