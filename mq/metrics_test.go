package mq_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/tide-run/tide/internal/metrics"
	"github.com/tide-run/tide/internal/promtest"
	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/mqtest"
)

// TestMetricsCountTraffic scrapes the broker's /metrics over HTTP while the official Go client produces and
// consumes, and checks the Apache-named series move by exactly the traffic sent.
func TestMetricsCountTraffic(t *testing.T) {
	reg := metrics.NewRegistry()
	srv := mqtest.RunServer(t, mq.Options{}, mqtest.WithMetrics(reg))
	hs := httptest.NewServer(metrics.Handler(reg, nil))
	defer hs.Close()
	url := hs.URL + "/metrics"

	const topic, n = "metered", 20
	createTopic(t, srv, topic, 4)
	p := newProducer(t, srv)
	body := "0123456789" // 10 bytes each
	for i := 0; i < n; i++ {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(body))); err != nil {
			t.Fatal(err)
		}
	}
	in := map[string]string{"topic": topic, "message_type": "normal", "cluster": "DefaultCluster", "node_type": "broker"}
	f := promtest.WaitValue(t, url, nil, "rocketmq_messages_in_total", in, n, 5*time.Second)
	if v, _ := f.Value("rocketmq_throughput_in_total", in); v != n*10 {
		t.Errorf("rocketmq_throughput_in_total = %v, want %d", v, n*10)
	}
	if v, _ := f.Value("rocketmq_message_size", in); v != n { // a histogram's count
		t.Errorf("rocketmq_message_size count = %v, want %d", v, n)
	}
	h := f["rocketmq_message_size"].GetMetric()[0].GetHistogram()
	if b := h.GetBucket()[0]; b.GetUpperBound() != 1024 || b.GetCumulativeCount() != n {
		t.Errorf("rocketmq_message_size le=%v: %d, want le=1024: %d", b.GetUpperBound(), b.GetCumulativeCount(), n)
	}
	sends, _ := f.Value("rocketmq_rpc_latency", map[string]string{"request_code": "send_message", "response_code": "success"})
	sendsV2, _ := f.Value("rocketmq_rpc_latency", map[string]string{"request_code": "send_message_v2", "response_code": "success"})
	if sends+sendsV2 != n {
		t.Errorf("rocketmq_rpc_latency count for sends = %v + %v, want %d", sends, sendsV2, n)
	}
	if !f.Has("rocketmq_producer_connections", nil) { // the Go client registers its producer with its first heartbeat (30 s)
		t.Error("no rocketmq_producer_connections")
	}
	if v, _ := f.Value("rocketmq_storage_size", nil); v <= 0 {
		t.Errorf("rocketmq_storage_size = %v, want > 0", v)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "tide_mq_connections"} {
		if !f.Has(name, nil) {
			t.Errorf("no %s in /metrics", name)
		}
	}

	// A consumer group reads everything: messages out by exactly n, then its committed lag reaches 0.
	group := uniq("metered-group")
	c := newPushConsumer(t, srv, group, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	got := consume(t, c, topic, consumer.MessageSelector{})
	waitFor(t, 30*time.Second, "all messages consumed", func() bool { return got.count() >= n })
	grp := map[string]string{"topic": topic, "consumer_group": group}
	promtest.WaitValue(t, url, nil, "rocketmq_messages_out_total", grp, n, 10*time.Second)
	f = promtest.WaitValue(t, url, nil, "rocketmq_consumer_lag_messages", grp, 0, 30*time.Second)
	if v, _ := f.Value("rocketmq_consumer_connections", map[string]string{"consumer_group": group}); v != 1 {
		t.Errorf("rocketmq_consumer_connections{consumer_group=%s} = %v, want 1", group, v)
	}

	// With the group stopped, m more messages are lag: per topic and summed over its queues.
	c.Shutdown()
	const m = 7
	for i := 0; i < m; i++ {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	f = promtest.WaitValue(t, url, nil, "rocketmq_consumer_lag_messages", grp, m, 10*time.Second)
	if v, _ := f.Value("tide_mq_consumer_queue_lag_messages", grp); v != m {
		t.Errorf("tide_mq_consumer_queue_lag_messages summed over queues = %v, want %d", v, m)
	}
	if v, _ := f.Value("rocketmq_consumer_ready_messages", grp); v != m {
		t.Errorf("rocketmq_consumer_ready_messages = %v, want %d", v, m)
	}
	if v, _ := f.Value("rocketmq_messages_in_total", in); v != n+m {
		t.Errorf("rocketmq_messages_in_total = %v, want %d", v, n+m)
	}
}

// TestMetricsLint checks the broker's collectors against client_golang's pedantic registry (consistent
// descriptors, valid names) and its linter (naming conventions), after some traffic.
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	srv := mqtest.RunServer(t, mq.Options{}, mqtest.WithMetrics(reg))
	createTopic(t, srv, "linted", 1)
	sendN(t, newProducer(t, srv), "linted", 3, "")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.RegisterMetrics(prometheus.NewRegistry()); err == nil {
		t.Error("RegisterMetrics after Start: no error")
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		// Apache's names are kept as they are (no unit suffix, counters named *_total), which the linter flags.
		switch p.Metric {
		case "rocketmq_rpc_latency", "rocketmq_message_size", "rocketmq_storage_size", "rocketmq_storage_message_reserve_time",
			"rocketmq_storage_flush_behind_bytes", "rocketmq_throughput_in_total", "rocketmq_throughput_out_total":
			continue
		}
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestMetricsCountDeadLetters: a message its group keeps failing reaches %DLQ%<group> after maxReconsumeTimes
// retries; rocketmq_send_to_dlq_messages_total counts it once, under its original topic, and the retries are not
// counted as produced messages.
func TestMetricsCountDeadLetters(t *testing.T) {
	reg := metrics.NewRegistry()
	srv := mqtest.RunServer(t, mq.Options{DelayLevels: shortLevels(100 * time.Millisecond)}, mqtest.WithMetrics(reg))
	hs := httptest.NewServer(metrics.Handler(reg, nil))
	defer hs.Close()
	createTopic(t, srv, "poisoned", 1)
	if _, err := newProducer(t, srv).SendSync(context.Background(), primitive.NewMessage("poisoned", []byte("poison"))); err != nil {
		t.Fatal(err)
	}
	group := uniq("g-poisoned")
	c := newPushConsumer(t, srv, group, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset), consumer.WithMaxReconsumeTimes(2))
	if err := c.Subscribe("poisoned", consumer.MessageSelector{}, func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		return consumer.ConsumeRetryLater, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	f := promtest.WaitValue(t, hs.URL, nil, "rocketmq_send_to_dlq_messages_total", map[string]string{"topic": "poisoned", "consumer_group": group}, 1, 30*time.Second)
	if v, _ := f.Value("rocketmq_messages_in_total", map[string]string{"topic": "poisoned"}); v != 1 {
		t.Errorf("rocketmq_messages_in_total{topic=poisoned} = %v, want 1 (retries are not produced messages)", v)
	}
	if f.Has("rocketmq_messages_in_total", map[string]string{"topic": "%RETRY%" + group}) {
		t.Errorf("send-backs counted as produced messages")
	}
}
