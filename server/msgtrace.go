package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/msgtrace"
)

// Message trace on the API: what `tide mq trace ID|KEY` prints, as JSON, for the dashboard's message page
// (/dashboard/messages) and any HTTP client. The answer is read from the platform's RocketMQ (the embedded broker, or
// the external cluster eventing runs on) through the admin protocol, per request.
const (
	// MessageTracePath answers GET with MessageTraceList for the message id or key {key}.
	MessageTracePath = "/tide/v1/messagetraces/{key}"
	// DashboardMessageTracePath is the same under the dashboard's path (its token cookie counts there).
	DashboardMessageTracePath = "/dashboard/api/messagetraces/{key}"
)

// MessageTraceList is the answer of MessageTracePath: each message the key names, then the messages of the
// CloudEvents tide's consumers made of them (their Broker-topic copies), in the order `tide mq trace` prints them.
type MessageTraceList struct {
	Key      string              `json:"key"`
	Messages []MessageTraceEntry `json:"messages"`
}

// MessageTraceEntry is one message's life.
type MessageTraceEntry struct {
	MsgID string `json:"msgId"`
	// TraceID is the OpenTelemetry trace the stored message names in its properties ("" if none).
	TraceID      string                      `json:"traceId,omitempty"`
	Stored       *StoredMessage              `json:"stored,omitempty"`
	Published    []msgtrace.Record           `json:"published,omitempty"`
	Transactions []msgtrace.Record           `json:"transactions,omitempty"`
	Recalls      []msgtrace.Record           `json:"recalls,omitempty"`
	Consumed     []msgtrace.GroupConsumption `json:"consumed,omitempty"`
	Skipped      int                         `json:"skippedRecords,omitempty"`
}

// StoredMessage is where and when the broker stored a message (no body: the page shows the path, not contents).
type StoredMessage struct {
	Topic          string `json:"topic"`
	QueueID        int32  `json:"queueId"`
	QueueOffset    int64  `json:"queueOffset"`
	StoreTime      int64  `json:"storeTime"` // Unix ms
	BornTime       int64  `json:"bornTime"`
	StoreHost      string `json:"storeHost"`
	BornHost       string `json:"bornHost"`
	Tags           string `json:"tags,omitempty"`
	Keys           string `json:"keys,omitempty"`
	ReconsumeTimes int32  `json:"reconsumeTimes,omitempty"`
	BodyBytes      int    `json:"bodyBytes"`
}

// setupMessageTrace serves MessageTracePath and DashboardMessageTracePath.
func (s *Server) setupMessageTrace() {
	h := http.HandlerFunc(s.serveMessageTrace)
	s.api.Handle("GET "+MessageTracePath, h)
	s.api.Handle("GET "+DashboardMessageTracePath, h)
}

func (s *Server) serveMessageTrace(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimSpace(r.PathValue("key"))
	if key == "" || len(key) > 255 || strings.ContainsAny(key, "\x00\x01\x02") {
		http.Error(w, "want a message id or key (at most 255 bytes)", http.StatusBadRequest)
		return
	}
	ns := (&topicMetrics{s: s}).nameServer()
	if ns == "" {
		http.Error(w, "no RocketMQ in this tide (started without its embedded broker and without --rocketmq-name-servers)", http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	c, err := admin.Dial(admin.WithCredentials(ctx, s.mqCreds), ns)
	if err != nil {
		http.Error(w, "rocketmq: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer c.Close()
	traces, err := c.Trace(ctx, key, "", time.Time{}, time.Time{})
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			code = http.StatusGatewayTimeout
		}
		http.Error(w, "message trace of "+key+": "+err.Error(), code)
		return
	}
	out := MessageTraceList{Key: key, Messages: []MessageTraceEntry{}}
	for _, t := range traces {
		e := MessageTraceEntry{MsgID: t.MsgID, TraceID: admin.TraceID(t.Stored), Published: t.Published, Transactions: t.Transactions,
			Recalls: t.Recalls, Consumed: t.Groups, Skipped: t.Skipped}
		if m := t.Stored; m != nil {
			e.Stored = &StoredMessage{Topic: m.Topic, QueueID: m.QueueID, QueueOffset: m.QueueOffset, StoreTime: m.StoreTimestamp,
				BornTime: m.BornTimestamp, StoreHost: m.StoreHost.String(), BornHost: m.BornHost.String(),
				Tags: message.Property(m.Properties, message.PropTags), Keys: message.Property(m.Properties, message.PropKeys),
				ReconsumeTimes: m.ReconsumeTimes, BodyBytes: len(m.Body)}
		}
		out.Messages = append(out.Messages, e)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}
