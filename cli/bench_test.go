package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchWithoutTideBench: tide does not carry the benchmarks; without tide-bench beside it or on PATH, `tide bench
// mq` fails with a usage error that says how to get it, and `tide bench` alone shows the same in its help.
func TestBenchWithoutTideBench(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var out, errOut bytes.Buffer
	if code := Main([]string{"bench", "mq", "--no-startup"}, strings.NewReader(""), &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "go build -o tide-bench ./cmd/tide-bench") {
		t.Fatalf("bench mq: exit %d %q", code, errOut.String())
	}
	out.Reset()
	if code := Main([]string{"bench"}, strings.NewReader(""), &out, &errOut); code != 0 || !strings.Contains(out.String(), "tide-bench") {
		t.Fatalf("bench: exit %d %q", code, out.String())
	}
}

// TestBenchRunsTideBench: with tide-bench on PATH, `tide bench ...` runs it with the same arguments, adds this
// executable as --tide-binary for the startup measurement unless the user chose one or skipped it, and exits with
// its exit code. tide-bench here is a shell script that records its arguments (the real one is tested in
// cmd/tide-bench); what is under test is tide's side of the hand-over.
func TestBenchRunsTideBench(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"args: $*\"\nexit 3\n"
	if err := os.WriteFile(filepath.Join(dir, "tide-bench"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "mq", "--peers", "rocketmq"}, "args: mq --peers rocketmq --tide-binary " + exe + "\n"},
		{[]string{"bench", "mq", "--no-startup"}, "args: mq --no-startup\n"},
		{[]string{"bench", "mq", "--tide-binary=/x/tide"}, "args: mq --tide-binary=/x/tide\n"},
		{[]string{"bench", "--help"}, "args: --help\n"},
	} {
		var out, errOut bytes.Buffer
		code := Main(c.args, strings.NewReader(""), &out, &errOut)
		if code != 3 || out.String() != c.want || errOut.Len() != 0 {
			t.Errorf("%v: exit %d, out %q (want %q), err %q", c.args, code, out.String(), c.want, errOut.String())
		}
	}
}
