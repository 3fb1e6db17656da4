package filter

import (
	"testing"

	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
)

// FuzzCESQL: Trigger specs arrive over the API, so a CESQL expression is
// untrusted input. Compile must return an error or a filter, never panic, and
// a compiled filter must evaluate without panicking.
func FuzzCESQL(f *testing.F) {
	for _, s := range []string{"type = 'a'", "type = ", "EXISTS subject AND priority > 2", "NOT 10",
		"LOWER(type) LIKE 'com.%'", "1 / 0", "ABS(-2147483648)", "(((", "'unterminated", "type IN ('a', 'b')"} {
		f.Add(s)
	}
	e := testEvent()
	f.Fuzz(func(t *testing.T, expr string) {
		flt, err := Compile(nil, []eventingv1.SubscriptionsAPIFilter{{CESQL: expr}})
		if err != nil {
			return
		}
		_ = flt.Match(e)
	})
}
