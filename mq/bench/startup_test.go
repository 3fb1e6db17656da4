package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tide-run/tide/mq"
)

// TestMain lets the startup measurement exec this test binary as a stand-in for `tide broker` (it prints the same
// "name server ADDR" line once listening), so the exec/ready/RSS path is tested without building tide.
func TestMain(m *testing.M) {
	if os.Getenv("TIDE_BENCH_CHILD_BROKER") == "1" {
		// Started by hand, not with mqtest: this is a child process standing in for the `tide broker` binary, with no
		// testing.T; what is measured is the process (exec to ready, RSS). The data dir comes from --data-dir (inside
		// the test's TempDir): the child dies by SIGTERM, no cleanup runs.
		dir := ""
		for i, a := range os.Args {
			if a == "--data-dir" && i+1 < len(os.Args) {
				dir = filepath.Join(os.Args[i+1], "mq")
			}
		}
		srv, err := mq.New(mq.Options{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err == nil {
			err = srv.Start(context.Background())
		}
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Printf("name server %s\nbroker %s\n", srv.NameServerAddr(), srv.BrokerAddr())
		select {}
	}
	os.Exit(m.Run())
}

func TestMeasureStartup(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TIDE_BENCH_CHILD_BROKER", "1")
	st, err := measureStartup(context.Background(), Options{TideBinary: exe, StartupRuns: 2, IdleWait: 100 * time.Millisecond,
		DataDir: t.TempDir(), StartupLoad: 300, Senders: 4, Connections: 1, BodySize: 64})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Ready) != 2 || st.ReadyMed <= 0 || st.IdleRSS <= 0 || st.IdleAnon <= 0 || st.IdleRSS < st.IdleAnon {
		t.Fatalf("%+v", st)
	}
	if l := st.Load; l == nil || l.Messages != 300 || l.Rate <= 0 || l.Errors != 0 || l.Missing != 0 || l.RSS <= 0 || l.Anon <= 0 {
		t.Fatalf("workload after the idle reading: %+v", st.Load)
	}
	var out bytes.Buffer
	rep := &Report{Options: Options{IdleWait: 100 * time.Millisecond}, Startup: st}
	if err := rep.WriteText(&out); err != nil || !strings.Contains(out.String(), "tide broker RSS after 300 sends (") ||
		!strings.Contains(out.String(), "file-backed over idle") {
		t.Fatalf("report %q %v", out.String(), err)
	}
}
