package filter

import (
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
)

func testEvent() *event.Event {
	e := event.New()
	e.SetID("1")
	e.SetSource("/orders")
	e.SetType("com.example.order.created")
	e.SetSubject("order-42")
	e.SetTime(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC))
	e.SetExtension("region", "eu-west")
	e.SetExtension("priority", 3)
	return &e
}

func attrs(m map[string]string) *eventingv1.TriggerFilter {
	return &eventingv1.TriggerFilter{Attributes: m}
}

func TestAttributesFilter(t *testing.T) {
	e := testEvent()
	cases := []struct {
		name  string
		attrs map[string]string
		want  bool
	}{
		{"nil passes", nil, true},
		{"exact type", map[string]string{"type": "com.example.order.created"}, true},
		{"case-sensitive", map[string]string{"type": "com.example.Order.created"}, false},
		{"two attributes", map[string]string{"type": "com.example.order.created", "source": "/orders"}, true},
		{"one mismatches", map[string]string{"type": "com.example.order.created", "source": "/x"}, false},
		{"extension", map[string]string{"region": "eu-west"}, true},
		{"integer extension formatted", map[string]string{"priority": "3"}, true},
		{"missing extension", map[string]string{"tenant": "a"}, false},
		{"any value of present attribute", map[string]string{"subject": ""}, true},
		{"any value of missing attribute", map[string]string{"dataschema": ""}, false},
		{"any value of missing extension", map[string]string{"tenant": ""}, false},
		{"time canonical", map[string]string{"time": "2026-11-21T10:00:00Z"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Compile(attrs(tc.attrs), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Match(e); got != tc.want {
				t.Fatalf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSubscriptionsAPIFilters(t *testing.T) {
	e := testEvent()
	sub := func(f eventingv1.SubscriptionsAPIFilter) []eventingv1.SubscriptionsAPIFilter {
		return []eventingv1.SubscriptionsAPIFilter{f}
	}
	cases := []struct {
		name    string
		filters []eventingv1.SubscriptionsAPIFilter
		want    bool
	}{
		{"exact", sub(eventingv1.SubscriptionsAPIFilter{Exact: map[string]string{"type": "com.example.order.created"}}), true},
		{"exact mismatch", sub(eventingv1.SubscriptionsAPIFilter{Exact: map[string]string{"type": "com.example.order"}}), false},
		{"exact missing attribute", sub(eventingv1.SubscriptionsAPIFilter{Exact: map[string]string{"tenant": "a"}}), false},
		{"prefix", sub(eventingv1.SubscriptionsAPIFilter{Prefix: map[string]string{"type": "com.example."}}), true},
		{"prefix mismatch", sub(eventingv1.SubscriptionsAPIFilter{Prefix: map[string]string{"type": "org."}}), false},
		{"prefix missing attribute", sub(eventingv1.SubscriptionsAPIFilter{Prefix: map[string]string{"dataschema": "http"}}), false},
		{"suffix", sub(eventingv1.SubscriptionsAPIFilter{Suffix: map[string]string{"type": ".created"}}), true},
		{"suffix mismatch", sub(eventingv1.SubscriptionsAPIFilter{Suffix: map[string]string{"type": ".deleted"}}), false},
		{"suffix missing attribute", sub(eventingv1.SubscriptionsAPIFilter{Suffix: map[string]string{"tenant": "a"}}), false},
		{"all", sub(eventingv1.SubscriptionsAPIFilter{All: []eventingv1.SubscriptionsAPIFilter{
			{Prefix: map[string]string{"type": "com."}}, {Exact: map[string]string{"region": "eu-west"}}}}), true},
		{"all one fails", sub(eventingv1.SubscriptionsAPIFilter{All: []eventingv1.SubscriptionsAPIFilter{
			{Prefix: map[string]string{"type": "com."}}, {Exact: map[string]string{"region": "us"}}}}), false},
		{"any", sub(eventingv1.SubscriptionsAPIFilter{Any: []eventingv1.SubscriptionsAPIFilter{
			{Exact: map[string]string{"region": "us"}}, {Exact: map[string]string{"region": "eu-west"}}}}), true},
		{"any none", sub(eventingv1.SubscriptionsAPIFilter{Any: []eventingv1.SubscriptionsAPIFilter{
			{Exact: map[string]string{"region": "us"}}, {Exact: map[string]string{"region": "ap"}}}}), false},
		{"not", sub(eventingv1.SubscriptionsAPIFilter{Not: &eventingv1.SubscriptionsAPIFilter{Exact: map[string]string{"region": "us"}}}), true},
		{"not of match", sub(eventingv1.SubscriptionsAPIFilter{Not: &eventingv1.SubscriptionsAPIFilter{Exact: map[string]string{"region": "eu-west"}}}), false},
		{"not of missing attribute", sub(eventingv1.SubscriptionsAPIFilter{Not: &eventingv1.SubscriptionsAPIFilter{Exact: map[string]string{"tenant": "a"}}}), true},
		{"cesql", sub(eventingv1.SubscriptionsAPIFilter{CESQL: "type LIKE 'com.example.%' AND priority > 2"}), true},
		{"cesql false", sub(eventingv1.SubscriptionsAPIFilter{CESQL: "priority > 5"}), false},
		{"cesql missing attribute is an error, fails", sub(eventingv1.SubscriptionsAPIFilter{CESQL: "tenant = 'a'"}), false},
		{"cesql non-boolean fails", sub(eventingv1.SubscriptionsAPIFilter{CESQL: "priority + 1"}), false},
		{"cesql exists", sub(eventingv1.SubscriptionsAPIFilter{CESQL: "EXISTS region AND NOT EXISTS tenant"}), true},
		{"empty object passes", sub(eventingv1.SubscriptionsAPIFilter{}), true},
		{"several entries are ANDed", []eventingv1.SubscriptionsAPIFilter{
			{Prefix: map[string]string{"type": "com."}}, {Suffix: map[string]string{"type": ".deleted"}}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Compile(nil, tc.filters)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Match(e); got != tc.want {
				t.Fatalf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFiltersOverrideFilter(t *testing.T) {
	e := testEvent()
	// spec.filter alone would reject the event; spec.filters accepts it and wins.
	f, err := Compile(attrs(map[string]string{"type": "something.else"}),
		[]eventingv1.SubscriptionsAPIFilter{{Exact: map[string]string{"type": "com.example.order.created"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Match(e) {
		t.Fatal("spec.filters must override spec.filter")
	}
	// And the other way round: filter would pass, filters rejects.
	f, err = Compile(attrs(map[string]string{"type": "com.example.order.created"}),
		[]eventingv1.SubscriptionsAPIFilter{{Exact: map[string]string{"type": "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if f.Match(e) {
		t.Fatal("spec.filters must override spec.filter")
	}
}

func TestCompileErrorsNameFieldPath(t *testing.T) {
	cases := []struct {
		name    string
		filters []eventingv1.SubscriptionsAPIFilter
		want    string
	}{
		{"bad cesql", []eventingv1.SubscriptionsAPIFilter{{}, {CESQL: "type = "}}, "spec.filters[1].cesql"},
		{"empty exact value", []eventingv1.SubscriptionsAPIFilter{{Exact: map[string]string{"type": ""}}}, "spec.filters[0].exact.type"},
		{"nested", []eventingv1.SubscriptionsAPIFilter{{Not: &eventingv1.SubscriptionsAPIFilter{All: []eventingv1.SubscriptionsAPIFilter{{Prefix: map[string]string{"": "x"}}}}}}, "spec.filters[0].not.all[0].prefix"},
		{"two dialects", []eventingv1.SubscriptionsAPIFilter{{Exact: map[string]string{"a": "b"}, CESQL: "TRUE"}}, "spec.filters[0]: expected exactly one"},
		{"empty any", []eventingv1.SubscriptionsAPIFilter{{Any: []eventingv1.SubscriptionsAPIFilter{}}}, "spec.filters[0].any"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(nil, tc.filters)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to name %q", err, tc.want)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestConcurrentMatch(t *testing.T) {
	f, err := Compile(nil, []eventingv1.SubscriptionsAPIFilter{{CESQL: "region = 'eu-west'"}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan bool)
	for range 8 {
		go func() {
			ok := true
			for range 200 {
				ok = ok && f.Match(testEvent())
			}
			done <- ok
		}()
	}
	for range 8 {
		if !<-done {
			t.Fatal("concurrent match failed")
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	e := testEvent()
	for _, bc := range []struct {
		name    string
		attrs   *eventingv1.TriggerFilter
		filters []eventingv1.SubscriptionsAPIFilter
	}{
		{"attributes", attrs(map[string]string{"type": "com.example.order.created", "region": "eu-west"}), nil},
		{"prefix", nil, []eventingv1.SubscriptionsAPIFilter{{Prefix: map[string]string{"type": "com.example."}}}},
		{"cesql", nil, []eventingv1.SubscriptionsAPIFilter{{CESQL: "type LIKE 'com.example.%' AND priority > 2"}}},
	} {
		f, err := Compile(bc.attrs, bc.filters)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if !f.Match(e) {
					b.Fatal("no match")
				}
			}
		})
	}
}
