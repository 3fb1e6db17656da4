// Package filter compiles a Trigger's filters into a matcher that decides, per
// CloudEvent, whether the Trigger's subscriber gets the event.
//
// Two dialects exist, as in Knative Eventing:
//
//   - spec.filter.attributes: every listed attribute must exist in the event and
//     equal the given value exactly (case-sensitive); an empty value means "any
//     value, as long as the attribute is present and non-empty".
//   - spec.filters (the CloudEvents Subscriptions API dialects): exact, prefix,
//     suffix, all, any, not and cesql. When spec.filters is non-empty it
//     overrides spec.filter entirely; several entries in spec.filters are ANDed.
//
// Compile does all the expensive work once per Trigger (parsing CESQL, sorting
// attribute lists); Match is then allocation-light and safe for concurrent use.
// A CESQL expression that errors at evaluation time or yields a non-boolean
// value does not pass, as the CESQL specification requires for filters.
package filter
