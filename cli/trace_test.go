package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tide-run/tide/internal/tracing/traceapi"
)

// TestPrintTrace: children under their parent in start order, a span whose parent is not held at the top, offsets
// from the trace's start, and a parent cycle in hostile input printed once per span.
func TestPrintTrace(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	sp := func(id, parent, name string, startMS, durMS int) traceapi.Span {
		return traceapi.Span{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: id, ParentSpanID: parent, Name: name,
			Kind: "internal", Status: "unset", Start: t0.Add(time.Duration(startMS) * time.Millisecond),
			End: t0.Add(time.Duration(startMS+durMS) * time.Millisecond), Attributes: map[string]string{"messaging.destination.name": "orders"}}
	}
	var out bytes.Buffer
	PrintTrace(&out, traceapi.Trace{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Spans: []traceapi.Span{
		sp("b", "a", "second child", 5, 1), sp("a", "", "root", 0, 10), sp("c", "a", "first child", 1, 2),
		sp("d", "c", "grandchild", 2, 1), sp("e", "gone", "orphan", 3, 1), sp("x", "y", "cycle x", 4, 1), sp("y", "x", "cycle y", 4, 1),
		msgSpan(sp("m1", "", "process orders", 6, 1), "MSG1", `["order-1","vip"]`), msgSpan(sp("m2", "m1", "process orders", 7, 1), "MSG1", "order-1"),
		msgSpan(sp("m3", "", "process tide-broker", 8, 1), "MSG2", ""),
	}})
	got := out.String()
	for _, want := range []string{"trace 4bf92f3577b34da6a3ce929d0e0e4736  10 spans  10.0ms", "root", "├─ first child", "│  └─ grandchild",
		"└─ second child", "orphan", "+5.0ms", "messaging.destination.name=orders",
		"messages (their RocketMQ message trace: tide mq trace ID)", "message MSG1  topic orders  keys order-1 vip", "message MSG2  topic orders  -"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "first child") > strings.Index(got, "second child") {
		t.Errorf("children not in start order:\n%s", got)
	}
	if strings.Count(got, "message MSG1") != 1 {
		t.Errorf("each message once:\n%s", got)
	}
	if strings.Count(got, "cycle x") != 1 || strings.Count(got, "cycle y") != 1 {
		t.Errorf("spans in a parent cycle must each be printed once:\n%s", got)
	}
}

func msgSpan(s traceapi.Span, id, keys string) traceapi.Span {
	s.Attributes = map[string]string{"messaging.destination.name": "orders", "messaging.message.id": id}
	if keys != "" {
		s.Attributes["messaging.rocketmq.message.keys"] = keys
	}
	return s
}
