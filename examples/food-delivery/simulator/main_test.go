package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tide-run/tide/demo/fooddelivery/simulator"
)

func TestBadFlagsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"--bogus"},
		{"extra-arg"},
		{"--peak-rate", "lots"},
		{"--namesrv", "no-port"}, // fails resolving: exit 1, named
	} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		want := 2
		if args[0] == "--namesrv" {
			want = 1
			if !strings.Contains(errb.String(), "no-port") {
				t.Errorf("%v: error does not name the address: %s", args, errb.String())
			}
		}
		if code != want {
			t.Errorf("%v: exit %d, want %d; stderr: %s", args, code, want, errb.String())
		}
	}
}

func TestWriteSent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sent.jsonl")
	at := time.Unix(1_700_000_000, 0).UTC()
	if err := writeSent(p, []simulator.Sent{{OrderID: "1", MsgID: "m1", SentAt: at}, {OrderID: "2", Malformed: true, SentAt: at}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	var first struct {
		OrderID   string    `json:"orderId"`
		MsgID     string    `json:"msgId"`
		SentAt    time.Time `json:"sentAt"`
		Malformed bool      `json:"malformed"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.OrderID != "1" || first.MsgID != "m1" || !first.SentAt.Equal(at) {
		t.Fatalf("first line %s: %+v %v", lines[0], first, err)
	}
	if !strings.Contains(lines[1], `"malformed":true`) {
		t.Fatalf("second line %s", lines[1])
	}
}
