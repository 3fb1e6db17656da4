package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestDemoFoodDeliveryFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "food-delivery", "--day", "-1s"}, "--day -1s: must be positive"},
		{[]string{"demo", "food-delivery", "--peak-rate", "-5"}, "--peak-rate -5: must be positive"},
		{[]string{"demo", "food-delivery", "--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"demo", "food-delivery", "extra"}, "unknown command"},
	} {
		var out, errOut bytes.Buffer
		code := Main(tc.args, strings.NewReader(""), &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errOut.String(), tc.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := Main([]string{"demo", "food-delivery", "--help"}, strings.NewReader(""), &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "--keep") || !strings.Contains(out.String(), "--peak-rate") {
		t.Fatalf("help: %d %s %s", code, out.String(), errOut.String())
	}
}
