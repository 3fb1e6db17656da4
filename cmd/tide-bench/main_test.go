package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestBadFlagsAndHelp(t *testing.T) {
	for _, args := range [][]string{{"mq", "--flush", "sometimes"}, {"mq", "--peers", "kafka", "--no-startup"}, {"foo"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d %q", args, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"mq", "--help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "Examples:") {
		t.Errorf("mq --help: %d %q", code, out.String())
	}
	out.Reset()
	if code := run(nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), "mq") {
		t.Errorf("no arguments: %d %q", code, out.String())
	}
}

// TestNoTideBinary: the startup measurement needs a tide binary; without one (none beside the test binary, an empty
// PATH) tide-bench says how to get one before running anything.
func TestNoTideBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var out, errOut bytes.Buffer
	if code := run([]string{"mq", "--peers", "rocketmq"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--tide-binary") {
		t.Fatalf("exit %d %q", code, errOut.String())
	}
}
