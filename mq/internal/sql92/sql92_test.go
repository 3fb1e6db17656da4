package sql92

import (
	"errors"
	"strings"
	"testing"
)

// props used by most cases, in the spirit of the Java filter's ExpressionTest context.
var props = Map{
	"a":       "3",
	"b":       "-5",
	"c":       "3.5",
	"big":     "5000000000",
	"s":       "hello world",
	"word":    "abc",
	"flag":    "true",
	"TAGS":    "TagA",
	"empty":   "",
	"nan":     "NaN",
	"spaced":  " 7 ",
	"$dollar": "1",
}

func TestMatch(t *testing.T) {
	cases := []struct {
		expr string
		want bool
	}{
		// Numeric comparisons convert the property string to the literal's type.
		{"a > 2", true}, {"a > 3", false}, {"a >= 3", true}, {"a < 4", true}, {"a <= 2", false},
		{"a = 3", true}, {"a <> 3", false}, {"a <> 4", true}, {"3 = a", true}, {"a = 3.0", true},
		{"b < 0", true}, {"b = -5", true}, {"-5 = b", true}, {"c > 3", false}, // "3.5" as Integer throws
		{"c > 3.4", true}, {"c = 3.5", true}, {"big > 1", false}, // Integer.valueOf("5000000000") throws
		{"big > 1L", false}, {"big > 3000000000", true}, {"big > 1.5", true},
		{"a > 2.5", true}, {"a > 3.5", false},
		// Two strings ordered are read as doubles.
		{"a > '2'", false}, // parse error case is separate; this one is compile-rejected, see TestCompileErrors
		// BETWEEN / NOT BETWEEN.
		{"a BETWEEN 0 AND 3", true}, {"a BETWEEN 4 AND 9", false}, {"a NOT BETWEEN 4 AND 9", true},
		{"a NOT BETWEEN 0 AND 3", false}, {"c BETWEEN 3.0 AND 4.0", true}, {"b between -10 and -1", true},
		{"missing BETWEEN 0 AND 3", false}, {"missing NOT BETWEEN 0 AND 3", false},
		// IN / NOT IN.
		{"TAGS IN ('TagA', 'TagB')", true}, {"TAGS IN ('TagB')", false}, {"TAGS NOT IN ('TagB', 'TagC')", true},
		{"TAGS NOT IN ('TagA')", false}, {"missing IN ('x')", false}, {"missing NOT IN ('x')", false},
		{"word in ('a','b','c','d','e','abc')", true},
		// IS NULL / IS NOT NULL.
		{"missing IS NULL", true}, {"a IS NULL", false}, {"a IS NOT NULL", true}, {"missing IS NOT NULL", false},
		{"empty IS NOT NULL", true},
		// String equality.
		{"word = 'abc'", true}, {"word = 'ABC'", false}, {"word <> 'abc'", false}, {"'abc' = word", true},
		{"missing = 'x'", false}, {"missing <> 'x'", false}, {"'x' <> missing", true}, // Java's asymmetry
		{"word = 1", false}, // Integer.valueOf("abc") throws
		// CONTAINS / STARTSWITH / ENDSWITH.
		{"s CONTAINS 'lo w'", true}, {"s CONTAINS 'xyz'", false}, {"s NOT CONTAINS 'xyz'", true},
		{"s STARTSWITH 'hell'", true}, {"s STARTSWITH 'world'", false}, {"s NOT STARTSWITH 'world'", true},
		{"s ENDSWITH 'world'", true}, {"s NOT ENDSWITH 'world'", false}, {"missing CONTAINS 'a'", false},
		{"missing NOT CONTAINS 'a'", false}, {"NOT (missing CONTAINS 'a')", true}, {"s CONTAINS ''", false},
		{"s NOT CONTAINS ''", false}, {"3 CONTAINS '3'", false}, {"s not endswith 'hello'", true},
		// Booleans.
		{"TRUE", true}, {"FALSE", false}, {"NULL", false}, {"flag = TRUE", true}, {"flag = FALSE", false},
		{"word = TRUE", false}, {"flag", false}, {"NOT flag", true}, {"missing", false},
		// Logic, three-valued.
		{"a > 1 AND b < 0", true}, {"a > 1 AND b > 0", false}, {"a > 5 OR b < 0", true}, {"a > 5 OR b > 0", false},
		{"missing > 1 OR a = 3", true}, {"missing > 1 AND a = 3", false}, {"NOT (missing > 1 AND a = 4)", true},
		{"NOT (missing > 1)", false}, {"NOT (a > 5)", true}, {"not not (a = 3)", true},
		{"(a = 3 OR b = 3) AND (TAGS IS NOT NULL AND TAGS IN ('TagA'))", true},
		{"a > 1 and word > 1", false},                              // error aborts even though the left side is TRUE
		{"a > 5 and word > 1", false}, {"a > 1 or word > 1", true}, // short circuits before the error
		// Doubles, specials.
		{"nan > 1.0", true}, {"nan = 1.0", false}, {"spaced > 6.5", true}, {"spaced > 6", false},
		{"a = 3L", true}, {"c = .35E1", true}, {"c = 35e-1", true},
		// Keywords are case-insensitive, names are not; $ and _ are name characters.
		{"A = 3", false}, {"$dollar = 1", true}, {"tags in ('TagA')", false},
		// Comments and unary plus.
		{"a = +3 -- trailing comment", true}, {"/* c */ a = 3", true},
	}
	for _, c := range cases {
		if c.expr == "a > '2'" {
			continue
		}
		e, err := Compile(c.expr)
		if err != nil {
			t.Errorf("Compile(%q): %v", c.expr, err)
			continue
		}
		if got := e.Match(props); got != c.want {
			t.Errorf("%q matched %v, want %v", c.expr, got, c.want)
		}
		enc := Encoded(encode(props))
		if got := e.Match(enc); got != c.want {
			t.Errorf("%q on encoded properties matched %v, want %v", c.expr, got, c.want)
		}
	}
}

func encode(m Map) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k + "\x01" + v + "\x02")
	}
	return b.String()
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		expr string
		pos  int
		msg  string
	}{
		{"", 0, "empty selector"},
		{"a >", 3, "expected a property, literal or (, found end of selector"},
		{"a > '2'", 4, "only numbers"},
		{"a = 1 = ", 8, "expected"},
		{"a BETWEEN 3 AND 1", 2, "low value"},
		{"a BETWEEN 1", 11, "expected AND"},
		{"a IN ()", 6, "string literal"},
		{"a IN (1, 2)", 6, "string literal"},
		{"'x' IN ('x')", 4, "IN needs a property"},
		{"a = NULL", 4, "IS NULL"},
		{"TRUE = 1", 5, "boolean"},
		{"(a > 1) > 2", 8, "condition cannot be compared"},
		{"1", 0, "will not result in a boolean"},
		{"a = 'abc", 4, "unterminated string"},
		{"a = 3 #", 6, "unexpected character"},
		{"a ! 3", 2, "unexpected character"},
		{"a = 007", 4, "leading zero"},
		{"a = 99999999999999999999", 4, "out of range"},
		{"a CONTAINS b", 11, "string literal"},
		{"a NOT = 1", 2, "end of selector"},
		{"(a = 1", 6, "expected )"},
		{"/* open", 0, "unterminated comment"},
		{"a IS 1", 5, "expected NULL"},
		{"a.b = 1", 1, "unexpected character"},
	}
	for _, c := range cases {
		_, err := Compile(c.expr)
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrSyntax) {
			t.Errorf("Compile(%q) = %v, want a *ParseError", c.expr, err)
			continue
		}
		if pe.Pos != c.pos || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Compile(%q) = %v (pos %d), want %q at %d", c.expr, err, pe.Pos, c.msg, c.pos)
		}
	}
}

func TestDeepNestingRejected(t *testing.T) {
	src := strings.Repeat("(", 10000) + "a=1" + strings.Repeat(")", 10000)
	if _, err := Compile(src); !errors.Is(err, ErrSyntax) {
		t.Fatalf("deep nesting: %v", err)
	}
	if _, err := Compile(strings.Repeat("NOT ", 5000) + "TRUE"); !errors.Is(err, ErrSyntax) {
		t.Fatalf("deep NOT chain: %v", err)
	}
}

func TestEncodedLastDuplicateWins(t *testing.T) {
	e := MustCompile("a = 2")
	if !e.Match(Encoded("a\x011\x02junk\x02a\x012\x02")) {
		t.Fatal("duplicate property: the later value should win")
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	e := MustCompile("(TAGS IN ('TagA','TagB')) AND (a BETWEEN 0 AND 3) AND s CONTAINS 'world'")
	var enc Properties = Encoded(encode(props)) // boxed once, as a caller evaluating many selectors would
	allocs := testing.AllocsPerRun(100, func() {
		if !e.Match(enc) {
			t.Fatal("no match")
		}
	})
	if allocs != 0 {
		t.Fatalf("Match allocated %v times per run", allocs)
	}
}

// BenchmarkMatch: go test ./mq/sql92 -bench Match -benchmem
func BenchmarkMatch(b *testing.B) {
	e := MustCompile("(TAGS IN ('TagA','TagB')) AND (a BETWEEN 0 AND 3)")
	enc := Encoded(encode(props))
	b.ReportAllocs()
	for b.Loop() {
		e.Match(enc)
	}
}
