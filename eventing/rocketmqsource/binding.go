package rocketmqsource

import (
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// This file is the whole pass-through detection, kept apart so it can switch to package eventing/binding (the
// Broker's CloudEvent <-> RocketMQ message codec) once that lands, without touching the mapping.
//
// The RocketMQ CloudEvents binding (apache/rocketmq-externals rocketmq-cloudevents-binding) puts each attribute in
// a user property prefixed "CE_" (binary mode), or the JSON event format in the body with the content-type property
// starting with "application/cloudevents" (structured mode). Its Java implementation names the content type
// CE_datacontenttype; the binding document says CE_contenttype; both are accepted, as is a plain content-type
// property announcing a structured body.

const bindingPrefix = "CE_"

// decodeBinding returns the CloudEvent a message carries under the binding, or false when it carries none (or an
// invalid one: the caller then maps it as a plain message).
func decodeBinding(props map[string]string, body []byte) (*cloudevents.Event, bool) {
	ct := ""
	for k, v := range props {
		if len(k) > len(bindingPrefix) && strings.EqualFold(k[:len(bindingPrefix)], bindingPrefix) {
			if n := strings.ToLower(k[len(bindingPrefix):]); n == "contenttype" || n == "datacontenttype" {
				ct = v
			}
		}
	}
	if ct == "" {
		ct = contentTypeProperty(props)
	}
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/cloudevents") {
		ev := cloudevents.NewEvent()
		if err := ev.UnmarshalJSON(body); err != nil || ev.Validate() != nil {
			return nil, false
		}
		return &ev, true
	}
	return decodeBinary(props, body)
}

func decodeBinary(props map[string]string, body []byte) (*cloudevents.Event, bool) {
	attrs := map[string]string{}
	for k, v := range props {
		if len(k) > len(bindingPrefix) && strings.EqualFold(k[:len(bindingPrefix)], bindingPrefix) {
			attrs[strings.ToLower(k[len(bindingPrefix):])] = v
		}
	}
	sv := attrs["specversion"]
	if sv != cloudevents.VersionV1 && sv != cloudevents.VersionV03 {
		return nil, false
	}
	ev := cloudevents.NewEvent(sv)
	for name, v := range attrs {
		var err error
		switch name {
		case "specversion":
		case "id":
			ev.SetID(v)
		case "source":
			ev.SetSource(v)
		case "type":
			ev.SetType(v)
		case "subject":
			ev.SetSubject(v)
		case "contenttype", "datacontenttype":
			ev.SetDataContentType(v)
		case "dataschema", "schemaurl":
			ev.SetDataSchema(v)
		case "time":
			var t time.Time
			if t, err = time.Parse(time.RFC3339Nano, v); err == nil {
				ev.SetTime(t)
			}
		case "datacontentencoding":
			// CloudEvents 0.3 only; the body holds the encoded data as is.
		default:
			err = ev.Context.SetExtension(name, v)
		}
		if err != nil {
			return nil, false
		}
	}
	if len(body) > 0 {
		ev.DataEncoded = body
	}
	if ev.Validate() != nil {
		return nil, false
	}
	return &ev, true
}
