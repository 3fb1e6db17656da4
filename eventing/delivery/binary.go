package delivery

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"unicode"

	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// Binary-mode HTTP encoding written directly into the request, producing exactly the headers and body sdk-go's
// cehttp.WriteRequest(ctx, binding.ToMessage(ev), req) produces (binary_test.go checks that, event by event), but
// without its per-event cost: sdk-go boxes every attribute into an interface, formats it through the generic
// accessor table, looks the header name up in a map and wraps the body twice; that was about a fifth of the
// allocations of a whole delivery (client and no-op server together) in BenchmarkSend.
//
// Invariant: for every event the headers set here equal sdk-go's: an attribute is written when it is set
// (a blank string or zero time counts as unset, as in sdk-go), datacontenttype as Content-Type, every other
// attribute as "Ce-<name>", extensions as "Ce-" + name with its first letter upper-cased, all values in
// CloudEvents' canonical string form (types.Format; time in UTC RFC 3339 with nanoseconds).

// Canonical header names of the CloudEvents 1.0 attributes (what textproto.CanonicalMIMEHeaderKey gives for
// "ce-<name>", the form sdk-go uses).
const (
	hdrID          = "Ce-Id"
	hdrSource      = "Ce-Source"
	hdrSpecVersion = "Ce-Specversion"
	hdrType        = "Ce-Type"
	hdrDataSchema  = "Ce-Dataschema"
	hdrSubject     = "Ce-Subject"
	hdrTime        = "Ce-Time"
	hdrContentType = "Content-Type"
)

// writeBinary sets req's headers and body to ev in binary mode. req.Header must be empty.
func writeBinary(req *http.Request, ev *event.Event) error {
	var err error
	switch c := ev.Context.(type) {
	case *event.EventContextV1:
		err = writeV1Headers(req, c)
	default:
		err = writeGenericHeaders(req, ev.Context)
	}
	if err != nil {
		return err
	}
	if body := ev.Data(); len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		// GetBody lets the transport replay the request on a fresh connection when a kept-alive one turns out
		// closed, as it does for any request built by http.NewRequest.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return nil
}

// writeV1Headers is the fast path for the context type every event tide builds or decodes carries.
func writeV1Headers(req *http.Request, c *event.EventContextV1) error {
	h := make(http.Header, 8+len(c.Extensions))
	req.Header = h
	// One backing array for all single values; each slice is capped at 1 so an append (a repeated key) copies
	// instead of overwriting its neighbour.
	vals := make([]string, 0, 8+len(c.Extensions))
	add := func(k, v string) {
		vals = append(vals, v)
		n := len(vals)
		if old := h[k]; old != nil {
			h[k] = append(old, v)
		} else {
			h[k] = vals[n-1 : n : n]
		}
	}
	set := func(k, v string) {
		vals = append(vals, v)
		n := len(vals)
		h[k] = vals[n-1 : n : n]
	}
	// Attribute order as sdk-go's 1.0 table: id, source, specversion, type, datacontenttype, dataschema,
	// subject, time.
	if c.ID != "" {
		add(hdrID, c.ID)
	}
	if s := c.Source.String(); s != "" {
		add(hdrSource, s)
	}
	add(hdrSpecVersion, event.CloudEventsVersionV1)
	if c.Type != "" {
		add(hdrType, c.Type)
	}
	if c.DataContentType != nil && *c.DataContentType != "" {
		add(hdrContentType, *c.DataContentType)
	}
	if c.DataSchema != nil {
		if s := c.DataSchema.String(); s != "" {
			add(hdrDataSchema, s)
		}
	}
	if c.Subject != nil && *c.Subject != "" {
		add(hdrSubject, *c.Subject)
	}
	if c.Time != nil && !c.Time.Time.IsZero() {
		add(hdrTime, types.FormatTime(c.Time.Time))
	}
	for k, v := range c.Extensions {
		if v == nil {
			delete(h, extHeader(k))
			continue
		}
		s, err := types.Format(v)
		if err != nil {
			return err
		}
		set(extHeader(k), s)
	}
	return nil
}

// writeGenericHeaders handles any other context (CloudEvents 0.3) through sdk-go's attribute table, the same
// walk sdk-go's binary writer makes.
func writeGenericHeaders(req *http.Request, c event.EventContext) error {
	h := req.Header
	if h == nil {
		h = http.Header{}
		req.Header = h
	}
	v := spec.VS.Version(c.GetSpecVersion())
	if v == nil {
		return errUnknownVersion(c.GetSpecVersion())
	}
	for _, a := range v.Attributes() {
		val := a.Get(c)
		if val == nil {
			continue
		}
		s, err := types.Format(val)
		if err != nil {
			return err
		}
		k := hdrContentType
		if a.Kind() != spec.DataContentType {
			k = http.CanonicalHeaderKey("ce-" + a.Name())
		}
		h[k] = append(h[k], s)
	}
	for k, val := range c.GetExtensions() {
		if val == nil {
			delete(h, extHeader(k))
			continue
		}
		s, err := types.Format(val)
		if err != nil {
			return err
		}
		h[extHeader(k)] = []string{s}
	}
	return nil
}

type errUnknownVersion string

func (e errUnknownVersion) Error() string { return "unknown CloudEvents specversion " + string(e) }

// extHeader is the header of extension name: "Ce-" and the name with its first byte upper-cased (sdk-go's
// rule; extension names are lower-case ASCII letters and digits, so the header is in canonical form).
func extHeader(name string) string {
	switch name { // the extensions most deliveries carry, without building the header name each time
	case "knativearrivaltime":
		return "Ce-Knativearrivaltime"
	case "traceparent":
		return "Ce-Traceparent"
	case "tracestate":
		return "Ce-Tracestate"
	case "partitionkey":
		return "Ce-Partitionkey"
	case "":
		return "Ce-"
	}
	if c := name[0]; c >= 'a' && c <= 'z' {
		var b strings.Builder
		b.Grow(3 + len(name))
		b.WriteString("Ce-")
		b.WriteByte(c - 'a' + 'A')
		b.WriteString(name[1:])
		return b.String()
	} else if c < 0x80 {
		return "Ce-" + name
	}
	var b strings.Builder
	b.WriteString("Ce-")
	b.WriteRune(unicode.ToUpper(rune(name[0])))
	b.WriteString(name[1:])
	return b.String()
}
