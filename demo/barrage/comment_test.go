package barrage

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalise(t *testing.T) {
	for in, want := range map[string]string{
		"  hello   world  ":       "hello world",
		"a\tb\nc\u00a0d\u200be":   "a b c de",
		"":                        "",
		"\x00\x01":                "",
		"弹幕 来了":                   "弹幕 来了",
		strings.Repeat("x", 200):  strings.Repeat("x", MaxTextRunes) + "…",
		strings.Repeat("x ", 200): strings.TrimSpace(strings.Repeat("x ", MaxTextRunes/2)) + "…",
		"bad\xffutf8":             "bad utf8",
	} {
		if got := Normalise(in); got != want {
			t.Errorf("Normalise(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFilter(t *testing.T) {
	blocked := BlockedSet("spam, Scam")
	for in, want := range map[string]struct {
		out string
		n   int
	}{
		"no SPAM here, spammer": {"no **** here, spammer", 1},
		"scam-scam":             {"****-****", 2},
		"clean":                 {"clean", 0},
		"spam弹幕spam":            {"spam弹幕spam", 0}, // one word of letters: not the blocked word
	} {
		out, n := Filter(in, blocked)
		if out != want.out || n != want.n {
			t.Errorf("Filter(%q) = %q, %d; want %q, %d", in, out, n, want.out, want.n)
		}
	}
	if len(BlockedSet("")) != len(DefaultBlockedWords) {
		t.Errorf("empty list does not give the defaults")
	}
}

func TestParseComment(t *testing.T) {
	tp := NewTraceParent()
	c, err := ParseComment([]byte(`{"id":"r1-0","run":"r1","seq":0,"text":"hi","sentNs":5,"traceparent":"` + tp + `"}`))
	if err != nil || c.ID != "r1-0" || c.TraceParent != tp || c.SentNs != 5 {
		t.Fatalf("ParseComment: %+v %v", c, err)
	}
	for _, bad := range []string{``, `[]`, `{"text":"no id"}`, `{"id":"a","seq":-1}`, `{"id":"` + strings.Repeat("x", 201) + `"}`,
		`{"id":"a","text":"` + strings.Repeat("x", MaxMessageBytes) + `"}`} {
		if _, err := ParseComment([]byte(bad)); err == nil {
			t.Errorf("ParseComment(%.40q) accepted", bad)
		}
	}
	c, err = ParseComment([]byte(`{"id":"a","traceparent":"00-zz"}`))
	if err != nil || c.TraceParent != "" {
		t.Errorf("a bad traceparent is dropped, not fatal: %+v %v", c, err)
	}
}

func TestTraceParent(t *testing.T) {
	tp := NewTraceParent()
	if !ValidTraceParent(tp) || len(TraceID(tp)) != 32 {
		t.Fatalf("NewTraceParent %q not valid", tp)
	}
	child := ChildTraceParent(tp)
	if TraceID(child) != TraceID(tp) || child == tp || !ValidTraceParent(child) {
		t.Errorf("child %q of %q", child, tp)
	}
	for _, bad := range []string{"", "01-" + tp[3:], "00-" + strings.Repeat("0", 32) + tp[35:], strings.ToUpper(tp)} {
		if ValidTraceParent(bad) {
			t.Errorf("ValidTraceParent(%q) = true", bad)
		}
	}
}

func FuzzParseComment(f *testing.F) {
	f.Add([]byte(`{"id":"r1-0","run":"r1","seq":0,"text":"hello","sentNs":1}`))
	f.Add([]byte(`{"id":"x","text":"  spam \u0000 spam  "}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseComment(b)
		if err != nil {
			return
		}
		r := Process(c, BlockedSet(""))
		if !utf8.ValidString(r.Shown) || utf8.RuneCountInString(r.Shown) > MaxTextRunes+1 || r.ID != c.ID {
			t.Fatalf("Process(%q) = %+v", b, r)
		}
	})
}
