package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestDemoBarrageFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "barrage", "--concurrency", "0"}, "--concurrency 0: between 1 and 100"},
		{[]string{"demo", "barrage", "--duration", "5m"}, "--duration 5m0s: more than 0 and at most 4m"},
		{[]string{"demo", "barrage", "--count", "-1"}, "--count -1: must not be negative"},
		{[]string{"demo", "barrage", "--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"demo", "barrage", "extra"}, "unknown command"},
	} {
		var out, errOut bytes.Buffer
		code := Main(tc.args, strings.NewReader(""), &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errOut.String(), tc.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := Main([]string{"demo", "barrage", "--help"}, strings.NewReader(""), &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "--send") || !strings.Contains(out.String(), "--concurrency") {
		t.Fatalf("help: %d %s %s", code, out.String(), errOut.String())
	}
}
