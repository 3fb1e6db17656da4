package barrage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tide-run/tide/internal/pgtest"
)

func openTestTable(t *testing.T) *Table {
	t.Helper()
	tb, err := OpenTable(context.Background(), TableConfig{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "b.db"), Table: "barrage"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb
}

// post sends a binary-mode CloudEvent as the Trigger does.
func post(t *testing.T, url, id string, body []byte, hdr map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-id", id)
	req.Header.Set("ce-source", "/apis/v1/namespaces/default/rocketmqsources/barrage#barrage-info")
	req.Header.Set("ce-type", "dev.knative.rocketmq.event")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTableBackends runs the processor and table scenarios on each database the programs link: the embedded SQLite
// and a real PostgreSQL (internal/pgtest; skipped with one line where it is not installed, as the seed's table
// storage is remote and any database/sql database may stand in for it).
func TestTableBackends(t *testing.T) {
	scenarios := map[string]func(*testing.T, func(*testing.T) *Table){
		"processor writes rows":      processorWritesRows,
		"instances heartbeat":        instancesHeartbeat,
		"concurrent saves of one id": concurrentSaves,
	}
	t.Run("sqlite", func(t *testing.T) {
		for name, f := range scenarios {
			t.Run(name, func(t *testing.T) { f(t, openTestTable) })
		}
	})
	t.Run("postgresql", func(t *testing.T) {
		srv := pgtest.Start(t)
		n := 0
		open := func(t *testing.T) *Table {
			n++ // a table of its own per scenario, in the one server
			tb, err := OpenTable(context.Background(), TableConfig{Driver: "postgres", DSN: srv.DSN, Table: fmt.Sprintf("barrage_%d", n)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tb.Close() })
			return tb
		}
		for name, f := range scenarios {
			t.Run(name, func(t *testing.T) { f(t, open) })
		}
	})
}

// processorWritesRows: a comment event becomes one normalised, filtered row (with the trace id of the request's
// traceparent); a redelivery counts a duplicate; a malformed comment is 400 and its dead letter is recorded.
func processorWritesRows(t *testing.T, open func(*testing.T) *Table) {
	tb := open(t)
	now := time.Unix(100, 0)
	p, err := NewProcessor(ProcessorOptions{Table: tb, Instance: "proc-1", Blocked: BlockedSet("spam"),
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	tp := NewTraceParent()
	body, _ := json.Marshal(Comment{ID: "r1-0", Run: "r1", Text: "  no   spam please ", SentNs: time.Unix(99, 0).UnixNano(),
		TraceParent: NewTraceParent()})
	if code := post(t, srv.URL, "e1", body, map[string]string{"traceparent": tp}); code != 202 {
		t.Fatalf("comment: %d", code)
	}
	if code := post(t, srv.URL, "e1", body, nil); code != 202 {
		t.Fatalf("redelivery: %d", code)
	}
	if code := post(t, srv.URL, "e2", []byte(`{"text":"no id"}`), nil); code != 400 {
		t.Fatalf("malformed: %d, want 400", code)
	}
	if code := post(t, srv.URL+"/dead-letter", "e2", []byte(`{"id":"r1-1","run":"r1"}`), map[string]string{"ce-knativeerrorcode": "400"}); code != 202 {
		t.Fatalf("dead letter: %d", code)
	}
	rows, err := tb.Since(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("rows %+v", rows)
	}
	r := rows[0]
	if r.Shown != "no **** please" || r.Filtered != 1 || r.Instance != "proc-1" || r.TraceID != TraceID(tp) ||
		r.Latency() != time.Second {
		t.Errorf("row %+v", r)
	}
	c, err := tb.CountRun(context.Background(), "r1")
	if err != nil || c != (RunCounts{Processed: 1, Duplicates: 1, DeadLettered: 1}) {
		t.Errorf("counts %+v %v", c, err)
	}
	if st := p.Stats(); st != (ProcessorStats{Processed: 1, Duplicates: 1, Rejected: 1, DeadLettered: 1}) {
		t.Errorf("stats %+v", st)
	}
}

func instancesHeartbeat(t *testing.T, open func(*testing.T) *Table) {
	tb := open(t)
	ctx := context.Background()
	t0 := time.Unix(1000, 0)
	for _, id := range []string{"a", "b"} {
		if err := tb.Heartbeat(ctx, id, t0, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := tb.Heartbeat(ctx, "a", t0, t0.Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := tb.Instances(ctx, t0.Add(3*time.Second)); err != nil || n != 1 {
		t.Errorf("alive since t0+3s: %d %v, want 1", n, err)
	}
	if err := tb.Gone(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if n, _ := tb.Instances(ctx, t0); n != 1 {
		t.Errorf("after a left: %d, want 1", n)
	}
}

// concurrentSaves: instances racing to save the same comment (redeliveries in flight at once) store it once and
// count the others as duplicates, on every database (the insert that loses the race retries as an update).
func concurrentSaves(t *testing.T, open func(*testing.T) *Table) {
	tb := open(t)
	const racers = 8
	var wg sync.WaitGroup
	inserted := make(chan bool, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := tb.Save(context.Background(), Result{ID: "r2-0", Run: "r2", Text: "x", Shown: "x", ProcessedNs: int64(i + 1),
				Instance: fmt.Sprint("p", i), TraceID: strings.Repeat("a", 32)})
			if err != nil {
				t.Error(err)
			}
			inserted <- ok
		}()
	}
	wg.Wait()
	close(inserted)
	n := 0
	for ok := range inserted {
		if ok {
			n++
		}
	}
	c, err := tb.CountRun(context.Background(), "r2")
	if n != 1 || err != nil || c != (RunCounts{Processed: 1, Duplicates: racers - 1}) {
		t.Errorf("%d saves inserted, counts %+v (%v); want 1 row and %d duplicates", n, c, err, racers-1)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if c := ConfigFromEnv(env(map[string]string{"OTS_ENDPOINT": "https://barrage.cn-hangzhou.ots.aliyuncs.com", "TABLE_NAME": "barrage"})); c != (TableConfig{"sqlite", DefaultDBPath, "barrage"}) {
		t.Errorf("seed env: %+v", c)
	}
	if c := ConfigFromEnv(env(map[string]string{"OTS_ENDPOINT": "sqlite:/x/y.db"})); c.DSN != "/x/y.db" {
		t.Errorf("sqlite OTS_ENDPOINT: %+v", c)
	}
	if c := ConfigFromEnv(env(map[string]string{"BARRAGE_DB_DRIVER": "postgres", "BARRAGE_DB_DSN": "postgres://h/db"})); c != (TableConfig{"postgres", "postgres://h/db", "barrage"}) {
		t.Errorf("postgres: %+v", c)
	}
	if _, err := OpenTable(context.Background(), TableConfig{Driver: "mysql", DSN: "x", Table: "barrage"}, nil); err == nil || !strings.Contains(err.Error(), "sqlite, pgx") {
		t.Errorf("unlinked driver: %v", err)
	}
	if _, err := OpenTable(context.Background(), TableConfig{Driver: "sqlite", DSN: ":memory:", Table: "x; DROP"}, nil); err == nil {
		t.Errorf("bad table name accepted")
	}
	if got := (&Table{dollar: true}).q("a = ? AND b = ?"); got != "a = $1 AND b = $2" {
		t.Errorf("q: %q", got)
	}
}
