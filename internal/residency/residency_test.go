package residency

import "testing"

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		val  string
		want bool
	}{{"", true}, {"on", true}, {"1", true}, {"off", false}, {"OFF", false}, {"0", false}, {"false", false}, {" no ", false}} {
		t.Setenv(EnvVar, tc.val)
		if got := Enabled(); got != tc.want {
			t.Errorf("%s=%q: Enabled() = %v, want %v", EnvVar, tc.val, got, tc.want)
		}
	}
}

func TestReleaseStartupPagesOff(t *testing.T) {
	t.Setenv(EnvVar, "off")
	res, err := ReleaseStartupPages()
	if err != nil || res != (Result{}) {
		t.Fatalf("ReleaseStartupPages with %s=off = %+v, %v; want a zero Result and nil", EnvVar, res, err)
	}
}
