package cli

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestFlagValueNamesAreWords: pflag turns the first `backquoted` text of a flag's usage into the value name shown
// after the flag, so a backquoted command in a usage string garbled --help (`--instance tide get rev -o wide`).
// Every flag of every command must show a one-word value name or none.
func TestFlagValueNamesAreWords(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		check := func(f *pflag.Flag) {
			if name, _ := pflag.UnquoteUsage(f); strings.ContainsAny(name, " \t") {
				t.Errorf("%s --%s: value name %q in --help", c.CommandPath(), f.Name, name)
			}
		}
		c.LocalFlags().VisitAll(check)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRootCommand(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}))

	var out, errOut bytes.Buffer
	if code := Main([]string{"logs", "--help"}, strings.NewReader(""), &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "--instance NAME ") {
		t.Errorf("logs --help: exit %d\n%s", code, out.String())
	}
}

func TestMQSendHeaderAndConsumeBodies(t *testing.T) {
	srv := startMQ(t)
	mustMQ(t, srv, "", "topic", "create", "orders", "--queues", "1")
	out := mustMQ(t, srv, "", "send", "orders", `{"orderId":"1"}`, "--tag", "order")
	header := strings.Fields(strings.SplitN(out, "\n", 2)[0])
	seen := map[string]bool{}
	for _, h := range header {
		if seen[h] {
			t.Errorf("send: header word %s twice: %q", h, out)
		}
		seen[h] = true
	}
	if sent := rows(t, out); len(sent) != 1 || len(sent[0]["OFFSETMSGID"]) == 0 || sent[0]["OFFSETMSGID"] == sent[0]["MSGID"] {
		t.Errorf("send: %q", out)
	}

	// The table prints a JSON body as it was sent (no escaped quotes); a newline, which would break the row, is
	// escaped; and one message is "1 message".
	mustMQ(t, srv, "two\nlines", "send", "orders", "-")
	r := runMQ(t, srv, "", "consume", "orders", "--group", "g", "--from", "first", "--timeout", "300ms")
	if r.code != 0 {
		t.Fatalf("consume: exit %d %s", r.code, r.errOut)
	}
	got := rows(t, r.out)
	if len(got) != 2 || got[0]["BODY"] != `{"orderId":"1"}` || got[1]["BODY"] != `two\nlines` {
		t.Errorf("consume table bodies: %q", r.out)
	}
	if !strings.HasPrefix(r.errOut, "2 messages; ") {
		t.Errorf("consume summary %q", r.errOut)
	}
	mustMQ(t, srv, "", "send", "orders", "three")
	r = runMQ(t, srv, "", "consume", "orders", "--group", "g", "--timeout", "300ms")
	if r.code != 0 || !strings.HasPrefix(r.errOut, "1 message; offsets of group g on orders committed") {
		t.Errorf("consume of one: exit %d, stderr %q", r.code, r.errOut)
	}
}

func TestBodyPreview(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{`{"a":"é"}`, 60, `{"a":"é"}`},
		{"a\tb\r\n", 60, `a\tb\r\n`},
		{"abcdef", 3, "abc..."},
		{"\xff\xfe", 60, "<2 bytes binary>"},
	} {
		if got := bodyPreview([]byte(c.in), c.n); got != c.want {
			t.Errorf("bodyPreview(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestVersionLine(t *testing.T) {
	suffix := " " + runtime.GOOS + "/" + runtime.GOARCH
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/tide-run/tide", Version: "v0.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "358a5001a2b3c4d5e6f708192a3b4c5d6e7f8091"},
			{Key: "vcs.time", Value: "2026-12-07T16:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	for _, c := range []struct {
		release string
		info    *debug.BuildInfo
		ok      bool
		want    string
	}{
		{"dev", info, true, "tide v0.4.0 (commit 358a5001a2b3, 2026-12-07T16:00:00Z, modified) go1.26.8" + suffix},
		{"v1.0.0", info, true, "tide v1.0.0 (commit 358a5001a2b3, 2026-12-07T16:00:00Z, modified) go1.26.8" + suffix},
		{"dev", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true, "tide devel go1.26.8" + suffix},
		{"dev", nil, false, "tide devel " + runtime.Version() + suffix},
	} {
		if got := versionLine(c.release, c.info, c.ok); got != c.want {
			t.Errorf("versionLine(%q) = %q, want %q", c.release, got, c.want)
		}
	}
	// The command itself: never the bare placeholder, always the Go version.
	var out, errOut bytes.Buffer
	if code := Main([]string{"version"}, strings.NewReader(""), &out, &errOut); code != 0 ||
		strings.Contains(out.String(), "tide dev\n") || !strings.Contains(out.String(), runtime.Version()) {
		t.Errorf("tide version: exit %d %q", code, out.String())
	}
}
