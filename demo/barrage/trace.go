package barrage

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// The W3C Trace Context header (traceparent) carried with every comment: version 00, a 16-byte trace id, the
// 8-byte id of the parent span, flags. This package does not record spans (tide's tracing does); it keeps the
// context flowing from the page (span "sender") through the message and HTTP (spans "receiver", "process",
// "result"), so a tracer finds them in one trace.

// Span names of a comment's trace, as seed 003's services name them (TRACE_NAME*, SUB_SPAN*).
const (
	SpanSender   = "sender"
	SpanReceiver = "receiver"
	SpanProcess  = "process"
	SpanResult   = "result"
)

// NewTraceParent starts a new sampled trace: "00-<trace id>-<span id>-01".
func NewTraceParent() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}

// ChildTraceParent is tp with a new span id (the same trace), for the next hop; "" when tp is not valid.
func ChildTraceParent(tp string) string {
	if !ValidTraceParent(tp) {
		return ""
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return tp[:36] + hex.EncodeToString(b[:]) + tp[52:]
}

// ValidTraceParent checks the version-00 format: lower-case hex, trace and span ids not all zero.
func ValidTraceParent(tp string) bool {
	if len(tp) != 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || !strings.HasPrefix(tp, "00") {
		return false
	}
	for i, c := range tp {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return tp[3:35] != strings.Repeat("0", 32) && tp[36:52] != strings.Repeat("0", 16)
}

// TraceID is the trace id of a valid traceparent, else "".
func TraceID(tp string) string {
	if !ValidTraceParent(tp) {
		return ""
	}
	return tp[3:35]
}
