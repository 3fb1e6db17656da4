package scenario

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"sigs.k8s.io/yaml"

	"github.com/tide-run/tide/demo/fooddelivery"
	"github.com/tide-run/tide/eventing/delivery"
	"github.com/tide-run/tide/eventing/filter"
	"github.com/tide-run/tide/eventing/rocketmqsource"
	foodbundle "github.com/tide-run/tide/examples/food-delivery"
	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/mqtest"
)

// The demo's data path with tide's real parts wherever they exist as libraries: the embedded RocketMQ, the official
// client on both ends, the RocketMQSource's message -> CloudEvent mapping, the Trigger filter compiled from the
// bundle's trigger.yaml, Knative delivery (retries, dead-letter sink with knativeerror* extensions) configured from
// the same file, and two order-service instances sharing one SQLite file. The glue between them (one push consumer
// standing in for the source adapter, the Broker topic and the Trigger's consumer group) is the platform's job and is
// tested end to end by `tide demo`. This proves the application and the platform agree on the contract: the mapped
// events pass the bundle's filter, carry the born time, and malformed orders dead-letter instead of being lost.
func TestRunThroughEmbeddedRocketMQAndTideEventing(t *testing.T) {
	rlog.SetLogLevel("error")
	ctx := context.Background()
	srv := mqtest.RunServer(t, mq.Options{})

	// Two order-service instances on one database.
	db := filepath.Join(t.TempDir(), "orders.db")
	var instances []*url.URL
	for i := 0; i < 2; i++ {
		store, err := fooddelivery.OpenStore(ctx, fooddelivery.StoreOptions{Path: db, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		svc, err := fooddelivery.NewService(fooddelivery.ServiceOptions{Store: store, Work: 5 * time.Millisecond,
			Instance: fmt.Sprint("instance-", i), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(svc)
		t.Cleanup(hs.Close)
		u, _ := url.Parse(hs.URL + "/")
		instances = append(instances, u)
	}

	// The Trigger exactly as the bundle declares it.
	raw, err := foodbundle.Read("trigger.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var trig eventingv1.Trigger
	if err := yaml.UnmarshalStrict(raw, &trig); err != nil {
		t.Fatal(err)
	}
	match, err := filter.Compile(trig.Spec.Filter, trig.Spec.Filters)
	if err != nil {
		t.Fatal(err)
	}
	dls, _ := url.Parse(instances[0].String() + "dead-letter")
	spec, err := delivery.FromDeliverySpec(trig.Spec.Delivery, dls)
	if err != nil {
		t.Fatal(err)
	}
	sender := delivery.New(delivery.Options{Logger: quiet})
	mapper := &rocketmqsource.Mapper{Namespace: "default", Name: "orders"}

	topic := "orders"
	var next, unmatched atomic.Int64
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{srv.NameServerAddr()})),
		consumer.WithGroupName("food-delivery-orders"),
		consumer.WithInstance(fmt.Sprintf("pipeline-%d", time.Now().UnixNano())),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithConsumeGoroutineNums(16))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Subscribe(topic, consumer.MessageSelector{}, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			ev := mapper.Map(m, m.StoreHost)
			if !match.Match(&ev) {
				unmatched.Add(1)
				continue
			}
			target := instances[next.Add(1)%int64(len(instances))]
			if r := sender.Send(ctx, target, ev, spec); r.Outcome == delivery.Failed {
				return consumer.ConsumeRetryLater, nil
			}
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The topic exists before anyone consumes, as the platform creates it for the source.
	if err := srv.CreateTopic(mqmeta.TopicConfig{TopicName: topic, ReadQueueNums: 4, WriteQueueNums: 4,
		Perm: mqmeta.PermRW}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown() })

	rep, err := Run(ctx, Options{
		NameServers: []string{srv.NameServerAddr()}, Topic: topic, DBPath: db,
		DayLength: 3 * time.Second, PeakRate: 200, Concurrency: 4, MalformedEvery: 10,
		DrainTimeout: 30 * time.Second, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Summary
	if s.Sent != 100 || s.Processed != 90 || s.DeadLettered != 10 || s.Lost != 0 || !s.OK() || !rep.Drained {
		t.Fatalf("summary %+v (events not matching the Trigger filter: %d)", s, unmatched.Load())
	}
	if unmatched.Load() != 0 {
		t.Fatalf("%d mapped events did not pass the bundle's Trigger filter", unmatched.Load())
	}
	// Latency is measured from the message's born time, which the mapping carries as the event time.
	if s.LatencySamples != 90 || s.LatencyP50 <= 0 || s.LatencyP99 > 10*time.Second {
		t.Fatalf("latency p50 %v p99 %v over %d", s.LatencyP50, s.LatencyP99, s.LatencySamples)
	}
	store, err := fooddelivery.OpenStore(ctx, fooddelivery.StoreOptions{Path: db, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	dead, err := store.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dead {
		if d.ErrorCode != "400" || d.OrderID == "" {
			t.Fatalf("dead letter without Knative's error extensions: %+v", d)
		}
	}
	orders, err := store.Orders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byInstance := map[string]int{}
	for _, o := range orders {
		byInstance[o.Instance]++
		if o.Born.IsZero() {
			t.Fatalf("order %s has no born time", o.OrderID)
		}
	}
	if len(byInstance) != 2 {
		t.Fatalf("orders per instance %v, want both instances used", byInstance)
	}
}
