package tracerecord

import (
	"strconv"
	"strings"
	"time"
)

// Topic is where the official clients, and tide, write message-trace records.
const Topic = "RMQ_SYS_TRACE_TOPIC"

// Record types (Java's TraceType) tide writes.
const (
	SubBefore = "SubBefore"
	SubAfter  = "SubAfter"
)

// ConsumeReturnType ordinals (Java's ConsumeReturnType), the SubAfter record's context code.
const (
	CodeSuccess   = 0
	CodeTimeout   = 1
	CodeException = 2
	CodeFailed    = 4
)

// ExtPrefix starts every extension field's name.
const ExtPrefix = "tide."

// maxExtValue bounds one extension value (a record is one line of a trace message of at most 64 KiB).
const maxExtValue = 512

// Ext is what tide adds to a consume record. Zero fields are not written.
type Ext struct {
	// TraceID is the OpenTelemetry trace (32 hex digits) the consumer processed the message in.
	TraceID string
	// Event is the id of the CloudEvent the message became (a source) or carried (a Trigger).
	Event string
	// Sink is where the event was delivered (a source's sink, a Trigger's subscriber), without credentials.
	Sink string
	// Outcome is the delivery's outcome: Delivered, DeadLettered, Failed.
	Outcome string
	// Status is the last HTTP status the sink answered (0: none).
	Status int
	// Attempts is how many HTTP deliveries were made (retries included).
	Attempts int
	// Delivery is how long the delivery took, retries and backoff included.
	Delivery time.Duration
	// Then is what happens to a message whose consumption failed: ThenRetry or ThenDLQ ("" after a success).
	Then string
}

// What happens to a message after a failed consumption (Ext.Then).
const (
	// ThenRetry: it goes back to RocketMQ (%RETRY%<group>, or in place when ordered) to be consumed again.
	ThenRetry = "retry"
	// ThenDLQ: it is moved to %DLQ%<group> (retries exhausted, or parked at once).
	ThenDLQ = "dlq"
)

// Fields returns the extension as record fields, "tide.<name>=<value>".
func (e Ext) Fields() []string {
	var f []string
	add := func(name, v string) {
		if v != "" {
			f = append(f, ExtPrefix+name+"="+clean(v))
		}
	}
	add("traceId", e.TraceID)
	add("event", e.Event)
	add("sink", e.Sink)
	add("outcome", e.Outcome)
	if e.Status != 0 {
		add("status", strconv.Itoa(e.Status))
	}
	if e.Attempts != 0 {
		add("attempts", strconv.Itoa(e.Attempts))
	}
	if e.Delivery > 0 || e.Outcome != "" {
		add("deliveryMs", strconv.FormatInt(e.Delivery.Milliseconds(), 10))
	}
	add("then", e.Then)
	return f
}

// clean keeps a value from breaking the record layout: no separators, no line breaks, bounded.
func clean(v string) string {
	v = strings.Map(func(r rune) rune {
		if r == '\x01' || r == '\x02' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, v)
	if len(v) > maxExtValue {
		v = v[:maxExtValue]
	}
	return v
}

// Consume describes one delivery of one message to a consumer group.
type Consume struct {
	Group      string // the consumer group, without a namespace's '%'
	RequestID  string // pairs the SubBefore with its SubAfter
	MsgID      string // the message's id (UNIQ_KEY)
	Keys       []string
	RetryTimes int // deliveries before this one, as the broker counted them
	ClientHost string
}

// BeforeRecord is the SubBefore record of c, started at start.
func (c Consume) BeforeRecord(start time.Time, ext Ext) string {
	// Java: SubBefore, timestamp, region, group, request id, msg id, retry times, keys; the Go client adds the
	// client host. tide's extension follows.
	f := []string{SubBefore, ms(start), "DefaultRegion", c.Group, c.RequestID, c.MsgID, strconv.Itoa(c.RetryTimes),
		keys(c.Keys), c.ClientHost}
	return join(append(f, ext.Fields()...))
}

// AfterRecord is the SubAfter record of c: success, the context code (Code*), how long the consume took and when
// it ended.
func (c Consume) AfterRecord(end time.Time, cost time.Duration, success bool, code int, ext Ext) string {
	// Java: SubAfter, request id, msg id, cost, success, keys, context code, timestamp; the 5.x clients add the
	// group. tide's extension follows.
	f := []string{SubAfter, c.RequestID, c.MsgID, strconv.FormatInt(cost.Milliseconds(), 10), strconv.FormatBool(success),
		keys(c.Keys), strconv.Itoa(code), ms(end), c.Group}
	return join(append(f, ext.Fields()...))
}

func keys(ks []string) string {
	if len(ks) == 0 {
		return "null" // what the clients write for no keys
	}
	return clean(strings.Join(ks, " "))
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// join is one record: fields separated by \x01, ended by \x02.
func join(fields []string) string { return strings.Join(fields, "\x01") + "\x02" }

// TraceIDFromTraceparent returns the trace id of a W3C traceparent value ("" when it is not one).
func TraceIDFromTraceparent(tp string) string {
	// version "-" trace-id (32 hex) "-" parent-id (16 hex) "-" flags
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' {
		return ""
	}
	id := tp[3:35]
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ""
		}
	}
	if id == "00000000000000000000000000000000" {
		return ""
	}
	return id
}
