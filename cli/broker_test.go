package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestBrokerRejectsBadFlush(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main([]string{"broker", "--flush", "sometimes", "--data-dir", t.TempDir()}, strings.NewReader(""), &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--flush") {
		t.Fatalf("exit %d stderr %q", code, errOut.String())
	}
}
