package msgtrace

import (
	"strconv"
	"strings"
)

// Record types (Java's TraceType).
const (
	Pub            = "Pub"
	SubBefore      = "SubBefore"
	SubAfter       = "SubAfter"
	EndTransaction = "EndTransaction"
	Recall         = "Recall"
)

const (
	fieldSep  = "\x01"
	recordSep = "\x02"
	// maxRecords bounds what one body yields (a client batches at most ~118 KB of records per message).
	maxRecords = 4096
)

// Record is one trace record. Which fields are set depends on Type (see the comments); times are Unix ms.
type Record struct {
	Type      string `json:"type,omitempty"`
	Timestamp int64  `json:"timestamp,omitempty"` // Pub, SubBefore, EndTransaction, Recall; SubAfter from clients that send it
	RegionID  string `json:"regionId,omitempty"`  // Pub, SubBefore, EndTransaction, Recall
	Group     string `json:"group,omitempty"`     // producer group (Pub, EndTransaction, Recall) or consumer group (SubBefore, SubAfter when sent)
	Topic     string `json:"topic,omitempty"`     // Pub, EndTransaction, Recall
	MsgID     string `json:"msgId,omitempty"`     // the message's id (UNIQ_KEY) in every type
	Tags      string `json:"tags,omitempty"`      // Pub, EndTransaction
	Keys      string `json:"keys,omitempty"`      // Pub, SubBefore, SubAfter, EndTransaction ("null" from some clients means none)
	StoreHost string `json:"storeHost,omitempty"` // Pub, EndTransaction: the broker the message was sent to
	// Pub
	BodyLength  int    `json:"bodyLength,omitempty"`
	CostMS      int64  `json:"costMs,omitempty"`  // Pub: send time; SubAfter: consume time
	MsgType     int    `json:"msgType,omitempty"` // Pub, EndTransaction: 0 normal, 1 transactional half, 2 transactional commit, 3 delay, 4 FIFO
	OffsetMsgID string `json:"offsetMsgId,omitempty"`
	Success     bool   `json:"success"`              // Pub, SubAfter, Recall
	ClientHost  string `json:"clientHost,omitempty"` // Pub (some clients), SubBefore (Go client)
	// SubBefore, SubAfter: RequestID pairs a consume attempt's two records.
	RequestID   string `json:"requestId,omitempty"`
	RetryTimes  int    `json:"retryTimes,omitempty"`  // SubBefore: how many times the message was consumed before
	ContextCode int    `json:"contextCode,omitempty"` // SubAfter: 0 SUCCESS, 1 TIME_OUT, 2 EXCEPTION, 3 RETURNNULL, 4 FAILED
	// EndTransaction
	TransactionID        string `json:"transactionId,omitempty"`
	TransactionState     string `json:"transactionState,omitempty"` // COMMIT_MESSAGE, ROLLBACK_MESSAGE, UNKNOW
	FromTransactionCheck bool   `json:"fromTransactionCheck,omitempty"`
	// tide's extension of SubBefore and SubAfter records ("tide.<name>=<value>" fields after the clients' own, which
	// Java's decoder ignores): what a RocketMQSource or a Trigger did with the message.
	TraceID    string `json:"traceId,omitempty"`    // the OpenTelemetry trace the consumer processed it in
	Event      string `json:"event,omitempty"`      // the CloudEvent's id it became (source) or carried (Trigger)
	Sink       string `json:"sink,omitempty"`       // where the event was delivered
	Outcome    string `json:"outcome,omitempty"`    // Delivered, DeadLettered, Failed
	Status     int    `json:"status,omitempty"`     // the sink's last HTTP status
	Attempts   int    `json:"attempts,omitempty"`   // HTTP deliveries made
	DeliveryMS int64  `json:"deliveryMs,omitempty"` // the delivery's latency, retries included
	Then       string `json:"then,omitempty"`       // after a failed consumption: "retry" (back to RocketMQ) or "dlq" (moved to %DLQ%<group>)
}

// extPrefix starts the name of each of tide's extension fields.
const extPrefix = "tide."

// isExt reports whether field f is one of tide's extension fields.
func isExt(f string) bool { return strings.HasPrefix(f, extPrefix) && strings.Contains(f, "=") }

// parseExt reads tide's extension fields; unknown names and bad numbers are ignored (a newer writer may add more).
func (r *Record) parseExt(fs []string) {
	for _, f := range fs {
		if !isExt(f) {
			continue
		}
		name, v, _ := strings.Cut(strings.TrimPrefix(f, extPrefix), "=")
		switch name {
		case "traceId":
			r.TraceID = v
		case "event":
			r.Event = v
		case "sink":
			r.Sink = v
		case "outcome":
			r.Outcome = v
		case "status":
			r.Status, _ = strconv.Atoi(v)
		case "attempts":
			r.Attempts, _ = strconv.Atoi(v)
		case "deliveryMs":
			r.DeliveryMS, _ = strconv.ParseInt(v, 10, 64)
		case "then":
			r.Then = v
		}
	}
}

// ContextCodeName names a SubAfter record's ContextCode (Java's ConsumeReturnType).
func ContextCodeName(c int) string {
	switch c {
	case 0:
		return "SUCCESS"
	case 1:
		return "TIME_OUT"
	case 2:
		return "EXCEPTION"
	case 3:
		return "RETURNNULL"
	case 4:
		return "FAILED"
	}
	return "code " + strconv.Itoa(c)
}

// Parse reads the records of one trace message body. Records of unknown types and records that do not parse (too
// few fields, a number that is not one) are skipped and counted in skipped; at most 4096 records are returned.
func Parse(body []byte) (recs []Record, skipped int) {
	s := string(body)
	for s != "" {
		var line string
		line, s, _ = strings.Cut(s, recordSep)
		if strings.Trim(line, " \r\n\t") == "" {
			continue
		}
		if len(recs) >= maxRecords {
			skipped++
			continue
		}
		r, ok := parseRecord(strings.Split(line, fieldSep))
		if !ok {
			skipped++
			continue
		}
		recs = append(recs, r)
	}
	return recs, skipped
}

type fields struct {
	f  []string
	ok bool
}

func (p *fields) int64(i int) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(p.f[i]), 10, 64)
	if err != nil {
		p.ok = false
	}
	return n
}

func (p *fields) int(i int) int {
	n, err := strconv.Atoi(strings.TrimSpace(p.f[i]))
	if err != nil {
		p.ok = false
	}
	return n
}

func (p *fields) bool(i int) bool {
	// Java's Boolean.parseBoolean: "true" in any case is true, anything else false.
	return strings.EqualFold(strings.TrimSpace(p.f[i]), "true")
}

func parseRecord(f []string) (Record, bool) {
	p := &fields{f: f, ok: true}
	r := Record{Type: f[0]}
	switch f[0] {
	case Pub:
		if len(f) < 13 {
			return r, false
		}
		r.Timestamp, r.RegionID, r.Group = p.int64(1), f[2], f[3]
		r.Topic, r.MsgID, r.Tags, r.Keys, r.StoreHost = f[4], f[5], f[6], f[7], f[8]
		r.BodyLength, r.CostMS, r.MsgType = p.int(9), p.int64(10), p.int(11)
		switch {
		case len(f) == 13:
			r.Success = p.bool(12)
		default:
			r.OffsetMsgID, r.Success = f[12], p.bool(13)
			if len(f) >= 15 {
				r.ClientHost = f[14]
			}
		}
	case SubBefore:
		if len(f) < 8 {
			return r, false
		}
		r.Timestamp, r.RegionID, r.Group, r.RequestID = p.int64(1), f[2], f[3], f[4]
		r.MsgID, r.RetryTimes, r.Keys = f[5], p.int(6), f[7]
		if len(f) >= 9 && !isExt(f[8]) {
			r.ClientHost = f[8]
		}
		r.parseExt(f[8:])
	case SubAfter:
		if len(f) < 6 {
			return r, false
		}
		r.RequestID, r.MsgID, r.CostMS, r.Success, r.Keys = f[1], f[2], p.int64(3), p.bool(4), f[5]
		if len(f) >= 7 {
			r.ContextCode = p.int(6)
		}
		// Java's clients write the timestamp at 7; the 5.x Go client and tide the group at 8, tide's extension after.
		if len(f) >= 8 {
			r.Timestamp = p.int64(7)
		}
		if len(f) >= 9 {
			r.Group = f[8]
			r.parseExt(f[9:])
		}
	case EndTransaction:
		if len(f) < 13 {
			return r, false
		}
		r.Timestamp, r.RegionID, r.Group = p.int64(1), f[2], f[3]
		r.Topic, r.MsgID, r.Tags, r.Keys, r.StoreHost = f[4], f[5], f[6], f[7], f[8]
		r.MsgType, r.TransactionID, r.TransactionState, r.FromTransactionCheck = p.int(9), f[10], f[11], p.bool(12)
	case Recall:
		if len(f) < 7 {
			return r, false
		}
		r.Timestamp, r.RegionID, r.Group = p.int64(1), f[2], f[3]
		r.Topic, r.MsgID, r.Success = f[4], f[5], p.bool(6)
	default:
		return r, false
	}
	if r.Keys == "null" {
		r.Keys = ""
	}
	return r, p.ok
}
