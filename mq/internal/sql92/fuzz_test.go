package sql92

import (
	"errors"
	"testing"
)

// FuzzCompileMatch: go test ./mq/sql92 -run '^$' -fuzz FuzzCompileMatch
// Compile never panics and fails only with a *ParseError; a compiled selector never panics on any properties.
func FuzzCompileMatch(f *testing.F) {
	for _, s := range []string{
		"a BETWEEN 0 AND 3", "TAGS IN ('TagA', 'TagB') AND a IS NOT NULL", "NOT (a > 1.5e3 OR b <> 'x''y')",
		"s CONTAINS 'x' AND s NOT STARTSWITH 'y' OR s ENDSWITH 'z'", "-a < -1L", "flag = TRUE -- c\n", "/* x */ NULL",
		"a NOT BETWEEN 1 AND 2", "a NOT IN ('1')", "((((a=1))))", "a = 'unterminated", "a > > 1",
	} {
		f.Add(s, "a\x013\x02b\x01x\x02TAGS\x01TagA\x02s\x01xyz\x02flag\x01true\x02")
	}
	f.Fuzz(func(t *testing.T, src, encoded string) {
		e, err := Compile(src)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Pos < 0 || pe.Pos > len(src) && pe.Pos != maxLen {
				t.Fatalf("Compile(%q): bad error %#v", src, err)
			}
			return
		}
		e.Match(Encoded(encoded))
		e.Match(Map{"a": encoded, "b": encoded, "TAGS": encoded, "s": encoded})
	})
}
