package msgtrace

import (
	"slices"
	"sort"
	"strings"
)

// Timeline is one message's life as its trace records tell it.
type Timeline struct {
	MsgID        string
	Published    []Record // Pub records, oldest first (a send retried by the client can write more than one)
	Transactions []Record // EndTransaction records
	Recalls      []Record
	Groups       []GroupConsumption // by first consumption
}

// GroupConsumption is what one consumer group did with the message.
type GroupConsumption struct {
	Group    string    `json:"group"`
	Attempts []Attempt `json:"attempts"` // oldest first; more than one means redelivery (retry, or a rebalance)
}

// Attempt is one delivery to a consumer: a SubBefore record and, once the listener returned, its SubAfter.
type Attempt struct {
	RequestID  string `json:"requestId,omitempty"`
	Start      int64  `json:"start,omitempty"` // ms, from SubBefore (0 if only the SubAfter arrived)
	End        int64  `json:"end,omitempty"`   // ms, from SubAfter when the client sends it
	ClientHost string `json:"clientHost,omitempty"`
	RetryTimes int    `json:"retryTimes"` // deliveries before this one, as the broker counted them
	Done       bool   `json:"done"`
	Success    bool   `json:"success"`
	CostMS     int64  `json:"costMs"`
	Result     string `json:"result,omitempty"` // SUCCESS, TIME_OUT, EXCEPTION, RETURNNULL, FAILED (from the SubAfter record)
	// What tide's consumers (a RocketMQSource, a Trigger) add (Record's extension): the OpenTelemetry trace, the
	// CloudEvent, where it was delivered, the outcome, the sink's last status, the HTTP attempts and the latency.
	TraceID    string `json:"traceId,omitempty"`
	Event      string `json:"event,omitempty"`
	Sink       string `json:"sink,omitempty"`
	Outcome    string `json:"outcome,omitempty"`
	Status     int    `json:"status,omitempty"`
	Attempts   int    `json:"attempts,omitempty"`
	DeliveryMS int64  `json:"deliveryMs,omitempty"`
	Then       string `json:"then,omitempty"` // after a failure: "retry" or "dlq" (moved to %DLQ%<group>)
}

// addExt fills what r's extension says and a is still missing (the SubAfter record knows more than the SubBefore).
func (a *Attempt) addExt(r Record) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&a.TraceID, r.TraceID)
	set(&a.Event, r.Event)
	set(&a.Sink, r.Sink)
	set(&a.Outcome, r.Outcome)
	set(&a.Then, r.Then)
	if r.Status != 0 {
		a.Status = r.Status
	}
	if r.Attempts != 0 {
		a.Attempts = r.Attempts
	}
	if r.DeliveryMS != 0 {
		a.DeliveryMS = r.DeliveryMS
	}
}

// TraceIDs lists the OpenTelemetry traces the timeline's consumers name, in first-seen order.
func (t Timeline) TraceIDs() []string {
	var out []string
	for _, g := range t.Groups {
		for _, a := range g.Attempts {
			if a.TraceID != "" && !slices.Contains(out, a.TraceID) {
				out = append(out, a.TraceID)
			}
		}
	}
	return out
}

// Events lists the CloudEvent ids the timeline's consumers name, in first-seen order.
func (t Timeline) Events() []string {
	var out []string
	for _, g := range t.Groups {
		for _, a := range g.Attempts {
			if a.Event != "" && !slices.Contains(out, a.Event) {
				out = append(out, a.Event)
			}
		}
	}
	return out
}

// Matches reports whether r is about the message with id msgID or carries key among its KEYS.
func Matches(r Record, key string) bool {
	if r.MsgID == key {
		return true
	}
	for _, k := range strings.Fields(r.Keys) {
		if k == key {
			return true
		}
	}
	return false
}

// Build gathers the records of message msgID into its timeline. Records of other messages are ignored.
func Build(msgID string, recs []Record) Timeline {
	t := Timeline{MsgID: msgID}
	type akey struct{ req, group string }
	attempts := map[akey]*Attempt{}
	byReq := map[string]string{} // request id -> group, from SubBefore
	var order []akey
	get := func(k akey) *Attempt {
		a := attempts[k]
		if a == nil {
			a = &Attempt{RequestID: k.req}
			attempts[k] = a
			order = append(order, k)
		}
		return a
	}
	for _, r := range recs {
		if r.MsgID != msgID {
			continue
		}
		switch r.Type {
		case Pub:
			t.Published = append(t.Published, r)
		case EndTransaction:
			t.Transactions = append(t.Transactions, r)
		case Recall:
			t.Recalls = append(t.Recalls, r)
		case SubBefore:
			byReq[r.RequestID] = r.Group
			a := get(akey{r.RequestID, r.Group})
			a.Start, a.ClientHost, a.RetryTimes = r.Timestamp, r.ClientHost, r.RetryTimes
			a.addExt(r)
		}
	}
	for _, r := range recs {
		if r.MsgID != msgID || r.Type != SubAfter {
			continue
		}
		g := r.Group
		if g == "" {
			g = byReq[r.RequestID] // older clients do not repeat the group in SubAfter
		}
		a := get(akey{r.RequestID, g})
		a.Done, a.Success, a.CostMS, a.End, a.Result = true, r.Success, r.CostMS, r.Timestamp, ContextCodeName(r.ContextCode)
		a.addExt(r)
	}
	groups := map[string]*GroupConsumption{}
	var gorder []string
	for _, k := range order {
		g := groups[k.group]
		if g == nil {
			g = &GroupConsumption{Group: k.group}
			groups[k.group] = g
			gorder = append(gorder, k.group)
		}
		g.Attempts = append(g.Attempts, *attempts[k])
	}
	at := func(a Attempt) int64 {
		if a.Start != 0 {
			return a.Start
		}
		return a.End
	}
	for _, name := range gorder {
		g := groups[name]
		sort.SliceStable(g.Attempts, func(i, j int) bool { return at(g.Attempts[i]) < at(g.Attempts[j]) })
		t.Groups = append(t.Groups, *g)
	}
	sort.SliceStable(t.Groups, func(i, j int) bool { return at(t.Groups[i].Attempts[0]) < at(t.Groups[j].Attempts[0]) })
	sort.SliceStable(t.Published, func(i, j int) bool { return t.Published[i].Timestamp < t.Published[j].Timestamp })
	return t
}

// MsgIDs lists, in first-seen order, the ids of the messages that records about key (a message id or one of its
// keys) name.
func MsgIDs(recs []Record, key string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range recs {
		if Matches(r, key) && r.MsgID != "" && !seen[r.MsgID] {
			seen[r.MsgID] = true
			out = append(out, r.MsgID)
		}
	}
	return out
}
