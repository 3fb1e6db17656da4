package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/tide-run/tide/internal/apachetest"
)

// TestAdapterRocketMQOnApache runs `tide adapter rocketmq` against the real Apache RocketMQ (the adapter next to
// any RocketMQ, as a ContainerSource on a cluster): messages produced to Apache with the official Go client all
// arrive at a sink that fails every other request, each as a CloudEvent whose id is the message id, and the adapter
// stops cleanly. It is the only test in this package that needs Apache, so it starts its own cluster (about 40 s);
// a second such test should share one cluster per package run rather than start another.
func TestAdapterRocketMQOnApache(t *testing.T) {
	rlog.SetLogLevel("error")
	apache := apachetest.Start(t)
	const topic, n = "orders-on-apache", 30

	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{apache.NameServer})))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := adm.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(apache.Broker),
		admin.WithReadQueueNums(2), admin.WithWriteQueueNums(2)); err != nil {
		t.Fatalf("create topic on Apache: %v", err)
	}
	// Apache's broker registers a new topic's route with the name server in the background.
	waitUntil(t, time.Minute, func() bool {
		qs, err := adm.FetchPublishMessageQueues(ctx, topic)
		return err == nil && len(qs) == 2
	})

	type event struct{ id, typ, source, data, contentType string }
	var mu sync.Mutex
	requests := 0
	accepted := map[string]event{} // by CloudEvent id
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		requests++
		if requests%2 == 1 {
			http.Error(w, "every other request fails", http.StatusServiceUnavailable)
			return
		}
		accepted[e.ID()] = event{e.ID(), e.Type(), e.Source(), string(e.Data()), e.DataContentType()}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer sink.Close()

	env := map[string]string{
		"K_SINK":                           sink.URL,
		"ROCKETMQ_NAME_SERVERS":            apache.NameServer,
		"ROCKETMQ_TOPIC":                   topic,
		"ROCKETMQ_INITIAL_OFFSET":          "earliest",
		"ROCKETMQ_SOURCE_NAME":             "apache-orders",
		"ROCKETMQ_DELIVERY_RETRY":          "20",
		"ROCKETMQ_DELIVERY_BACKOFF_POLICY": "linear",
		"ROCKETMQ_DELIVERY_BACKOFF_DELAY":  "PT0.01S",
	}
	cmd := newAdapterCommand(func(k string) string { return env[k] })
	var errOut syncBuffer
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"rocketmq"})
	actx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(actx) }()

	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{apache.NameServer}), producer.WithRetry(2),
		producer.WithGroupName("cli-apache-pg"), producer.WithInstanceName("cli-apache-p"), producer.WithSendMsgTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	want := map[string]string{} // message id -> body
	for i := range n {
		body := fmt.Sprintf(`{"order":%d}`, i)
		r, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(body)))
		if err != nil || r.Status != primitive.SendOK {
			t.Fatalf("send %d to Apache: %v %v", i, r, err)
		}
		want[r.MsgID] = body
	}

	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		k := len(accepted)
		mu.Unlock()
		if k >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink accepted %d of %d events within 2 minutes; adapter log:\n%s", k, n, errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("adapter exited with %v; log:\n%s", err, errOut.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("adapter did not stop within 40 s")
	}

	mu.Lock()
	defer mu.Unlock()
	if len(accepted) != n {
		t.Errorf("the sink accepted %d distinct events, want %d", len(accepted), n)
	}
	for id, body := range want {
		e, ok := accepted[id]
		if !ok {
			t.Errorf("message %s (%s) never arrived as a CloudEvent", id, body)
			continue
		}
		if e.typ != "dev.knative.rocketmq.event" || e.source != "/apis/v1/namespaces/default/rocketmqsources/apache-orders#"+topic ||
			e.data != body || e.contentType != "application/json" {
			t.Errorf("message %s arrived as %+v, want data %s", id, e, body)
		}
	}
}
