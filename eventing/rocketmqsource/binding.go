package rocketmqsource

import (
	"strings"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/tide-run/tide/eventing/binding"
)

// decodeBinding is the whole pass-through detection: it returns the CloudEvent a message carries under the
// RocketMQ CloudEvents binding (package eventing/binding, the same codec the Broker stores events with), or false
// when it carries none or an invalid one (the caller then maps it as a plain message, so nothing is dropped).
//
// Beyond the binding's own CE_contenttype, a structured body is also recognised by a plain content-type property
// (content-type, contentType, CONTENT_TYPE, ...) starting with application/cloudevents, as producers that are not
// binding-aware set it.
func decodeBinding(props map[string]string, body []byte) (*cloudevents.Event, bool) {
	if !binding.IsCloudEvent(props) {
		ct := contentTypeProperty(props)
		if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), binding.StructuredPrefix) {
			return nil, false
		}
		props = map[string]string{binding.PropContentType: strings.TrimSpace(ct)}
	}
	ev, err := binding.Decode(body, props)
	if err != nil {
		return nil, false
	}
	return ev, true
}
