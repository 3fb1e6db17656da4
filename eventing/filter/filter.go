package filter

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	cesql "github.com/cloudevents/sdk-go/sql/v2"
	cesqlparser "github.com/cloudevents/sdk-go/sql/v2/parser"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
)

// ErrInvalid is wrapped by every error Compile returns; the message names the
// field path (spec.filter.attributes, spec.filters[2].cesql, ...) at fault.
var ErrInvalid = errors.New("invalid trigger filter")

// ErrCESQLParse is wrapped when a CESQL expression does not parse (in
// addition to the parser's own error, when it returns one).
var ErrCESQLParse = errors.New("cesql parse error")

// Filter decides whether an event passes. Implementations are immutable after
// Compile and safe for concurrent use.
type Filter interface {
	Match(e *event.Event) bool
}

// MatchAll is the filter of a Trigger without filters: every event passes.
var MatchAll Filter = matchAll{}

type matchAll struct{}

func (matchAll) Match(*event.Event) bool { return true }

// Compile builds the matcher for a Trigger. filters (spec.filters) overrides
// attrs (spec.filter) when it has at least one entry, following Knative. Either
// may be nil. The returned error wraps ErrInvalid and names the field path.
func Compile(attrs *eventingv1.TriggerFilter, filters []eventingv1.SubscriptionsAPIFilter) (Filter, error) {
	if len(filters) > 0 {
		parts := make([]Filter, 0, len(filters))
		for i := range filters {
			f, err := compileAPI(&filters[i], fmt.Sprintf("spec.filters[%d]", i))
			if err != nil {
				return nil, err
			}
			parts = append(parts, f)
		}
		return all(parts), nil
	}
	if attrs == nil || len(attrs.Attributes) == 0 {
		return MatchAll, nil
	}
	out := make(attributesFilter, 0, len(attrs.Attributes))
	for _, k := range slices.Sorted(maps.Keys(attrs.Attributes)) {
		if k == "" {
			return nil, fmt.Errorf("%w: spec.filter.attributes: attribute name must not be empty", ErrInvalid)
		}
		out = append(out, kv{k, attrs.Attributes[k]})
	}
	return out, nil
}

// compileAPI compiles one Subscriptions API filter. Like Knative's webhook it
// accepts exactly one dialect per object; an empty object passes everything.
func compileAPI(f *eventingv1.SubscriptionsAPIFilter, path string) (Filter, error) {
	var parts []Filter
	if f.Exact != nil {
		m, err := pairs(f.Exact, path+".exact")
		if err != nil {
			return nil, err
		}
		parts = append(parts, exactFilter(m))
	}
	if f.Prefix != nil {
		m, err := pairs(f.Prefix, path+".prefix")
		if err != nil {
			return nil, err
		}
		parts = append(parts, prefixFilter(m))
	}
	if f.Suffix != nil {
		m, err := pairs(f.Suffix, path+".suffix")
		if err != nil {
			return nil, err
		}
		parts = append(parts, suffixFilter(m))
	}
	if f.All != nil {
		sub := make([]Filter, 0, len(f.All))
		for i := range f.All {
			c, err := compileAPI(&f.All[i], fmt.Sprintf("%s.all[%d]", path, i))
			if err != nil {
				return nil, err
			}
			sub = append(sub, c)
		}
		parts = append(parts, all(sub))
	}
	if f.Any != nil {
		if len(f.Any) == 0 {
			return nil, fmt.Errorf("%w: %s.any: must contain at least one filter", ErrInvalid, path)
		}
		sub := make([]Filter, 0, len(f.Any))
		for i := range f.Any {
			c, err := compileAPI(&f.Any[i], fmt.Sprintf("%s.any[%d]", path, i))
			if err != nil {
				return nil, err
			}
			sub = append(sub, c)
		}
		parts = append(parts, anyFilter(sub))
	}
	if f.Not != nil {
		c, err := compileAPI(f.Not, path+".not")
		if err != nil {
			return nil, err
		}
		parts = append(parts, notFilter{c})
	}
	if f.CESQL != "" {
		expr, err := parseCESQL(f.CESQL)
		if err != nil {
			return nil, fmt.Errorf("%w: %s.cesql: %q does not parse: %w", ErrInvalid, path, f.CESQL, err)
		}
		parts = append(parts, cesqlFilter{expr})
	}
	switch len(parts) {
	case 0:
		return MatchAll, nil
	case 1:
		return parts[0], nil
	}
	return nil, fmt.Errorf("%w: %s: expected exactly one of exact, prefix, suffix, all, any, not, cesql; got %d", ErrInvalid, path, len(parts))
}

// parseCESQL parses an expression. The sdk-go v2.16.2 parser panics on some
// malformed input (for example "type = "); a user's typo must be a validation
// error, never a crash, so the panic becomes a parse error.
func parseCESQL(s string) (expr cesql.Expression, err error) {
	defer func() {
		if r := recover(); r != nil {
			expr, err = nil, fmt.Errorf("%w: %v", ErrCESQLParse, r)
		}
	}()
	expr, err = cesqlparser.Parse(s)
	if err == nil && expr == nil {
		err = ErrCESQLParse
	}
	return expr, err
}

func pairs(m map[string]string, path string) ([]kv, error) {
	out := make([]kv, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k == "" {
			return nil, fmt.Errorf("%w: %s: attribute name must not be empty", ErrInvalid, path)
		}
		if m[k] == "" {
			return nil, fmt.Errorf("%w: %s.%s: value must not be empty", ErrInvalid, path, k)
		}
		out = append(out, kv{k, m[k]})
	}
	return out, nil
}

type kv struct{ name, value string }

// attributesFilter is spec.filter.attributes: exact match, attribute present and
// non-empty; value "" matches any present value.
type attributesFilter []kv

func (f attributesFilter) Match(e *event.Event) bool {
	for _, p := range f {
		v, ok := Attribute(e, p.name)
		if !ok || v == "" {
			return false
		}
		if p.value != "" && v != p.value {
			return false
		}
	}
	return true
}

type exactFilter []kv

func (f exactFilter) Match(e *event.Event) bool {
	for _, p := range f {
		if v, ok := Attribute(e, p.name); !ok || v != p.value {
			return false
		}
	}
	return true
}

type prefixFilter []kv

func (f prefixFilter) Match(e *event.Event) bool {
	for _, p := range f {
		if v, ok := Attribute(e, p.name); !ok || !strings.HasPrefix(v, p.value) {
			return false
		}
	}
	return true
}

type suffixFilter []kv

func (f suffixFilter) Match(e *event.Event) bool {
	for _, p := range f {
		if v, ok := Attribute(e, p.name); !ok || !strings.HasSuffix(v, p.value) {
			return false
		}
	}
	return true
}

type all []Filter

func (f all) Match(e *event.Event) bool {
	for _, c := range f {
		if !c.Match(e) {
			return false
		}
	}
	return true
}

type anyFilter []Filter

func (f anyFilter) Match(e *event.Event) bool {
	for _, c := range f {
		if c.Match(e) {
			return true
		}
	}
	return false
}

type notFilter struct{ inner Filter }

func (f notFilter) Match(e *event.Event) bool { return !f.inner.Match(e) }

// cesqlFilter passes only when the expression evaluates without error to the
// boolean true (CESQL spec, "CESQL as a filter dialect").
type cesqlFilter struct{ expr cesql.Expression }

func (f cesqlFilter) Match(e *event.Event) (pass bool) {
	// A panic inside the evaluator is an evaluation error: the event does not
	// pass, and the dispatcher keeps running.
	defer func() {
		if recover() != nil {
			pass = false
		}
	}()
	v, err := f.expr.Evaluate(*e)
	if err != nil {
		return false
	}
	b, ok := v.(bool)
	return ok && b
}

// Attribute returns the canonical string form of a context attribute and
// whether the event carries it. Required attributes are always present;
// optional ones (subject, dataschema, datacontenttype, time, ...) only when
// set; extensions when present in the event, formatted per the CloudEvents
// type system.
func Attribute(e *event.Event, name string) (string, bool) {
	switch name {
	case "specversion":
		return e.SpecVersion(), e.SpecVersion() != ""
	case "id":
		return e.ID(), e.ID() != ""
	case "source":
		return e.Source(), e.Source() != ""
	case "type":
		return e.Type(), e.Type() != ""
	case "subject":
		return e.Subject(), e.Subject() != ""
	case "datacontenttype":
		return e.DataContentType(), e.DataContentType() != ""
	case "dataschema", "schemaurl":
		return e.DataSchema(), e.DataSchema() != ""
	case "datacontentencoding":
		return e.DeprecatedDataContentEncoding(), e.DeprecatedDataContentEncoding() != ""
	case "time":
		t := e.Time()
		if t.IsZero() {
			return "", false
		}
		return types.FormatTime(t), true
	}
	var v any
	var ok bool
	if c, isV1 := e.Context.(*event.EventContextV1); isV1 {
		v, ok = c.Extensions[name] // Extensions() would copy the whole map for this one lookup
	} else {
		v, ok = e.Extensions()[name]
	}
	if !ok {
		return "", false
	}
	s, err := types.Format(v)
	if err != nil {
		return "", false
	}
	return s, true
}
