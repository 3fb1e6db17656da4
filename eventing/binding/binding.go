package binding

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

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

// attrsByName maps specversion -> attribute name -> attribute: the lookup versions.Version(sv).Attribute(key)
// does for a property key "CE_<name>" (it lower-cases the whole key, allocating a string per property since the
// prefix is upper-case), keyed by the lower-cased name Decode has already computed. Immutable after init.
var attrsByName = func() map[string]map[string]spec.Attribute {
	m := map[string]map[string]spec.Attribute{}
	for _, v := range versions.Versions() {
		byName := map[string]spec.Attribute{}
		for _, a := range v.Attributes() {
			byName[strings.ToLower(a.Name())] = a
		}
		m[v.String()] = byName
	}
	return m
}()

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
	var props map[string]string
	var structured bool
	var err error
	if c, ok := e.Context.(*event.EventContextV1); ok {
		props, structured, err = encodeV1(c)
	} else {
		props, structured, err = encodeGeneric(e)
	}
	if err != nil {
		return nil, nil, err
	}
	if structured || propertiesSize(props) > MaxPropertiesBytes {
		return EncodeStructured(e)
	}
	return e.Data(), props, nil
}

// encodeV1 is encodeGeneric for the context type nearly every event has, reading the fields directly instead of
// through sdk-go's accessor table (which boxes each value) and copying the extensions map once instead of twice.
// It yields exactly encodeGeneric's properties (TestEncodeV1MatchesGeneric): an attribute is stored when set (a
// blank string or zero time counts as unset), values in CloudEvents' canonical string form.
func encodeV1(c *event.EventContextV1) (map[string]string, bool, error) {
	props := make(map[string]string, 8+len(c.Extensions))
	put := func(k, v string) bool {
		if !propertySafe(v) {
			return false
		}
		props[k] = v
		return true
	}
	if c.ID != "" && !put(Prefix+"id", c.ID) {
		return nil, true, nil
	}
	if s := c.Source.String(); s != "" && !put(Prefix+"source", s) {
		return nil, true, nil
	}
	props[PropSpecVersion] = event.CloudEventsVersionV1
	if c.Type != "" && !put(Prefix+"type", c.Type) {
		return nil, true, nil
	}
	if c.DataContentType != nil && *c.DataContentType != "" && !put(PropContentType, *c.DataContentType) {
		return nil, true, nil
	}
	if c.DataSchema != nil {
		if s := c.DataSchema.String(); s != "" && !put(Prefix+"dataschema", s) {
			return nil, true, nil
		}
	}
	if c.Subject != nil && *c.Subject != "" && !put(Prefix+"subject", *c.Subject) {
		return nil, true, nil
	}
	if c.Time != nil && !c.Time.Time.IsZero() {
		props[Prefix+"time"] = types.FormatTime(c.Time.Time)
	}
	for name, val := range c.Extensions {
		s, err := types.Format(val)
		if err != nil {
			return nil, false, fmt.Errorf("%w: extension %s: %w", ErrInvalidEvent, name, err)
		}
		if !propertySafe(s) || !propertySafe(name) {
			return nil, true, nil
		}
		props[Prefix+name] = s
	}
	return props, false, nil
}

// encodeGeneric builds the binary-mode properties of any context through sdk-go's attribute table. structured
// is true when some attribute cannot travel as a property (it contains RocketMQ's separators).
func encodeGeneric(e *event.Event) (map[string]string, bool, error) {
	v := versions.Version(e.SpecVersion())
	if v == nil {
		return nil, false, fmt.Errorf("%w: unknown specversion %q", ErrInvalidEvent, e.SpecVersion())
	}
	exts := e.Extensions()
	props := make(map[string]string, 8+len(exts))
	for _, a := range v.Attributes() {
		val := a.Get(e.Context)
		if val == nil {
			continue
		}
		s, err := types.Format(val)
		if err != nil {
			return nil, false, fmt.Errorf("%w: attribute %s: %w", ErrInvalidEvent, a.Name(), err)
		}
		if s == "" && a.Kind() != spec.SpecVersion {
			continue // optional attribute not set
		}
		key := Prefix + a.Name()
		if a.Kind() == spec.DataContentType {
			key = PropContentType
		}
		if !propertySafe(s) {
			return nil, true, nil
		}
		props[key] = s
	}
	for name, val := range exts {
		s, err := types.Format(val)
		if err != nil {
			return nil, false, fmt.Errorf("%w: extension %s: %w", ErrInvalidEvent, name, err)
		}
		if !propertySafe(s) || !propertySafe(name) {
			return nil, true, nil
		}
		props[Prefix+name] = s
	}
	return props, false, nil
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
	if sv == event.CloudEventsVersionV1 {
		return decodeV1(body, props)
	}
	return decodeGeneric(sv, body, props)
}

// decodeGeneric decodes a binary-mode message of any specversion through sdk-go's attribute table.
func decodeGeneric(sv string, body []byte, props map[string]string) (*event.Event, error) {
	v := versions.Version(sv)
	if v == nil {
		return nil, fmt.Errorf("%w: unknown specversion %q", ErrInvalidEvent, sv)
	}
	attrs := attrsByName[sv]
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
		if a := attrs[name]; a != nil {
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

// decodeV1 is Decode for a binary-mode 1.0 message (every event tide stores), without the generic table's cost: the
// table clones a template context and boxes every attribute value into an interface to set it through an accessor.
// Invariant (TestDecodeV1MatchesGeneric, FuzzDecode): the result and the error class equal decodeGeneric's for every
// property set; the setters called are the ones sdk-go's 1.0 table calls, with the same conversions.
func decodeV1(body []byte, props map[string]string) (*event.Event, error) {
	c := &event.EventContextV1{}
	for key, val := range props {
		if !strings.HasPrefix(key, Prefix) || key == PropSpecVersion {
			continue
		}
		if key == PropContentType {
			_ = c.SetDataContentType(val) // never fails
			continue
		}
		name := strings.ToLower(key[len(Prefix):]) // no allocation when already lower-case, the usual form
		var err error
		switch name {
		case "specversion":
			// A second spelling of the version ("CE_SPECVERSION"): the table's setter ignores it.
		case "id":
			err = c.SetID(val)
		case "source":
			err = c.SetSource(val)
		case "type":
			err = c.SetType(val)
		case "datacontenttype":
			err = c.SetDataContentType(val)
		case "dataschema":
			err = c.SetDataSchema(val)
		case "subject":
			err = c.SetSubject(val)
		case "time":
			var t time.Time
			if t, err = time.Parse(time.RFC3339Nano, val); err == nil { // what types.ToTime does with a string
				err = c.SetTime(t)
			}
		default:
			if err = c.SetExtension(name, val); err != nil {
				return nil, fmt.Errorf("%w: extension %s: %w", ErrInvalidEvent, name, err)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidEvent, name, err)
		}
	}
	e := &event.Event{Context: c}
	if len(body) > 0 {
		e.DataEncoded = body
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return e, nil
}
