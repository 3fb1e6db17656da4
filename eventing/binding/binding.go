package binding

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

const (
	// Prefix is the user-property prefix of every CloudEvents attribute.
	Prefix = "CE_"
	// PropContentType carries datacontenttype in binary mode and the event
	// format's media type in structured mode.
	PropContentType = "CE_contenttype"
	// PropSpecVersion is present on every binary-mode message.
	PropSpecVersion = "CE_specversion"
	// StructuredPrefix marks structured mode when CE_contenttype starts with it.
	StructuredPrefix = "application/cloudevents"
	// JSONFormat is the media type of the JSON event format.
	JSONFormat = "application/cloudevents+json"
)

var (
	// ErrNotCloudEvent: the message carries neither CE_specversion nor a
	// structured content type.
	ErrNotCloudEvent = errors.New("message is not a CloudEvent")
	// ErrInvalidEvent: the message claims to be a CloudEvent but is malformed
	// or fails CloudEvents validation.
	ErrInvalidEvent = errors.New("invalid CloudEvent in message")
)

var versions = spec.WithPrefix(Prefix)

// IsCloudEvent reports whether a message's properties mark it as a CloudEvent
// in either content mode, without decoding it.
func IsCloudEvent(props map[string]string) bool {
	if _, ok := props[PropSpecVersion]; ok {
		return true
	}
	return isStructured(props)
}

func isStructured(props map[string]string) bool {
	return strings.HasPrefix(strings.ToLower(props[PropContentType]), StructuredPrefix)
}

// Encode returns the body and user properties of the message that stores e.
// The properties map is freshly allocated; callers may add their own
// (non-CE_) properties to it.
func Encode(e *event.Event) ([]byte, map[string]string, error) {
	if err := e.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	v := versions.Version(e.SpecVersion())
	if v == nil {
		return nil, nil, fmt.Errorf("%w: unknown specversion %q", ErrInvalidEvent, e.SpecVersion())
	}
	props := make(map[string]string, 8+len(e.Extensions()))
	for _, a := range v.Attributes() {
		val := a.Get(e.Context)
		if val == nil {
			continue
		}
		s, err := types.Format(val)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: attribute %s: %w", ErrInvalidEvent, a.Name(), err)
		}
		if s == "" && a.Kind() != spec.SpecVersion {
			continue // optional attribute not set
		}
		key := Prefix + a.Name()
		if a.Kind() == spec.DataContentType {
			key = PropContentType
		}
		if !propertySafe(s) {
			return EncodeStructured(e)
		}
		props[key] = s
	}
	for name, val := range e.Extensions() {
		s, err := types.Format(val)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: extension %s: %w", ErrInvalidEvent, name, err)
		}
		if !propertySafe(s) || !propertySafe(name) {
			return EncodeStructured(e)
		}
		props[Prefix+name] = s
	}
	if propertiesSize(props) > MaxPropertiesBytes {
		return EncodeStructured(e)
	}
	return e.Data(), props, nil
}

// MaxPropertiesBytes bounds the encoded user properties of a binary-mode
// message. RocketMQ stores the properties' length in a signed 16-bit field
// (32767 bytes, shared with system properties the client and broker add), so
// events whose attributes would not fit are stored in structured mode, where
// they travel in the body.
const MaxPropertiesBytes = 30000

// propertiesSize is the length of props in RocketMQ's encoding:
// key 0x01 value 0x02 per pair.
func propertiesSize(props map[string]string) int {
	n := 0
	for k, v := range props {
		n += len(k) + len(v) + 2
	}
	return n
}

// EncodeStructured stores e in structured mode (JSON event format).
func EncodeStructured(e *event.Event) ([]byte, map[string]string, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return body, map[string]string{PropContentType: JSONFormat}, nil
}

// propertySafe reports whether s survives RocketMQ's property encoding, which
// joins key/value pairs with 0x01 and 0x02.
func propertySafe(s string) bool {
	return !strings.ContainsAny(s, "\x01\x02")
}

// Decode turns a message back into a CloudEvent. Properties without the CE_
// prefix are ignored. It returns ErrNotCloudEvent for plain messages and
// ErrInvalidEvent for malformed ones.
func Decode(body []byte, props map[string]string) (*event.Event, error) {
	if isStructured(props) {
		if !strings.HasPrefix(strings.ToLower(props[PropContentType]), JSONFormat) {
			return nil, fmt.Errorf("%w: unsupported event format %q", ErrInvalidEvent, props[PropContentType])
		}
		e := event.New()
		if err := json.Unmarshal(body, &e); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
		}
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
		}
		return &e, nil
	}
	sv, ok := props[PropSpecVersion]
	if !ok {
		return nil, ErrNotCloudEvent
	}
	v := versions.Version(sv)
	if v == nil {
		return nil, fmt.Errorf("%w: unknown specversion %q", ErrInvalidEvent, sv)
	}
	ctx := v.NewContext()
	for key, val := range props {
		if !strings.HasPrefix(key, Prefix) || key == PropSpecVersion {
			continue
		}
		name := strings.ToLower(key[len(Prefix):])
		if key == PropContentType {
			if err := ctx.SetDataContentType(val); err != nil {
				return nil, fmt.Errorf("%w: contenttype: %w", ErrInvalidEvent, err)
			}
			continue
		}
		if a := v.Attribute(key); a != nil {
			if err := a.Set(ctx, val); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrInvalidEvent, name, err)
			}
			continue
		}
		if err := ctx.SetExtension(name, val); err != nil {
			return nil, fmt.Errorf("%w: extension %s: %w", ErrInvalidEvent, name, err)
		}
	}
	e := &event.Event{Context: ctx}
	if len(body) > 0 {
		e.DataEncoded = body
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return e, nil
}
