package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tide-run/tide/internal/kafkatest"
)

// TestKafkaSourceOnApacheKafka runs Knative's KafkaSource in a whole tide against the real Apache Kafka (KRaft, on
// this machine's JVM), with a sink that fails half its requests, and stops tide mid-stream: every record produced
// (before, during and after the stop) reaches the sink; a record is delivered twice only if it was in flight when
// tide stopped (ordered delivery, the default: at most one per partition).
func TestKafkaSourceOnApacheKafka(t *testing.T) {
	k := kafkatest.Start(t)
	k.CreateTopic(t, "comments", 2)
	producer := k.Client(t, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	produce := func(from, n int) {
		t.Helper()
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Topic: "comments", Value: []byte(fmt.Sprintf(`{"n":%d}`, i))})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 100)
	sink := newHalfFailing(t)
	dir := t.TempDir()
	p := startPlatform(t, dir)
	doc := fmt.Sprintf(`
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {name: comments}
spec:
  bootstrapServers: [%s]
  topics: [comments]
  initialOffset: earliest
  delivery: {retry: 1, backoffPolicy: linear, backoffDelay: PT0.01S}
  sink: {uri: %s}
`, k.Bootstrap, sink.URL)
	p.apply(doc)
	p.waitReady("kafkasource", "comments")
	obj := p.getJSON("kafkasource", "comments")
	st, _ := obj["status"].(map[string]any)
	if st["sinkUri"] != sink.URL {
		t.Fatalf("status.sinkUri %v, want %s", st["sinkUri"], sink.URL)
	}
	for _, c := range []string{"SinkProvided", "ConnectionEstablished", "InitialOffsetsCommitted", "Deployed"} {
		if s, _ := condReason(obj, c); s != "True" {
			t.Errorf("condition %s: %s (status %v)", c, s, st)
		}
	}
	if table := p.mustRun("", "get", "kafkasources"); !strings.Contains(table, "TOPICS") || !strings.Contains(table, `["comments"]`) ||
		!strings.Contains(table, k.Bootstrap) {
		t.Errorf("tide get kafkasources:\n%s", table)
	}
	// What kubectl gets: a Table with Knative's printer columns.
	req, _ := http.NewRequest(http.MethodGet, p.srv.APIURL()+"/apis/sources.knative.dev/v1beta1/namespaces/default/kafkasources", nil)
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	req.Header.Set("Authorization", "Bearer "+p.srv.Access().Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Kind              string `json:"kind"`
		ColumnDefinitions []struct {
			Name string `json:"name"`
		} `json:"columnDefinitions"`
		Rows []struct {
			Cells []any `json:"cells"`
		} `json:"rows"`
	}
	err = json.NewDecoder(resp.Body).Decode(&table)
	resp.Body.Close()
	var cols []string
	for _, c := range table.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if err != nil || table.Kind != "Table" || strings.Join(cols, ",") != "Name,Topics,BootstrapServers,Ready,Reason,Age" ||
		len(table.Rows) != 1 || fmt.Sprint(table.Rows[0].Cells[3]) != "True" {
		t.Errorf("API Table: %v kind %q columns %v rows %+v", err, table.Kind, cols, table.Rows)
	}
	// A bad spec is refused at apply with Knative's field paths; a missing topic is a reason, not a crash.
	_, errOut, code := p.run(`
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {name: bad}
spec: {bootstrapServers: [nohostport], initialOffset: middle, sink: {uri: http://127.0.0.1:1}}
`, "apply", "-f", "-")
	for _, f := range []string{"spec.topics", "spec.initialOffset", "spec.bootstrapServers[0]"} {
		if code == 0 || !strings.Contains(errOut, f) {
			t.Errorf("apply of a bad KafkaSource: exit %d, stderr does not name %s:\n%s", code, f, errOut)
		}
	}
	p.apply(fmt.Sprintf(`
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {name: missing}
spec: {bootstrapServers: [%s], topics: [no-such-topic], sink: {uri: %s}}
`, k.Bootstrap, sink.URL))
	eventually(t, 30*time.Second, func() error {
		obj := p.getJSON("kafkasource", "missing")
		if s, r := condReason(obj, "Ready"); s != "False" || r != "TopicNotFound" {
			return fmt.Errorf("Ready %s %s", s, r)
		}
		if s, _ := condReason(obj, "ConnectionEstablished"); s != "True" {
			return fmt.Errorf("ConnectionEstablished %s", s)
		}
		return nil
	})
	p.mustRun("", "delete", "kafkasource", "missing")
	eventually(t, 30*time.Second, func() error {
		if n := len(sink.snapshot()); n < 30 {
			return fmt.Errorf("%d delivered before the stop", n)
		}
		return nil
	})
	p.stop()
	before := len(sink.snapshot())
	produce(100, 50) // while tide is down
	const n = 150
	if before >= n {
		t.Fatalf("all %d delivered before the stop; the test did not stop tide mid-stream", n)
	}
	p2 := startPlatform(t, dir)
	p2.waitReady("kafkasource", "comments")
	eventually(t, 60*time.Second, func() error {
		if got := len(sink.snapshot()); got != n {
			return fmt.Errorf("%d of %d distinct records delivered after the restart (%d before)", got, n, before)
		}
		return nil
	})
	sink.mu.Lock()
	twice := 0
	for d, c := range sink.seen {
		if c > 2 {
			t.Errorf("%s delivered %d times", d, c)
		}
		if c == 2 {
			twice++
		}
	}
	sink.mu.Unlock()
	if twice > 2 {
		t.Errorf("%d records delivered twice; ordered delivery over 2 partitions has at most 2 in flight at a stop", twice)
	}
	t.Logf("delivered %d before the stop, all %d after, %d twice", before, n, twice)
}
