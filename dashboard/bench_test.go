package dashboard

import (
	"context"
	"fmt"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// BenchmarkSample measures one sampling round (snapshot -> rates -> JSON -> ring -> fan-out) for a large single
// machine: 50 revisions, 20 topics with 3 groups each, 50 Triggers/Sources, and 20 open pages.
//
//	go test -run '^$' -bench Sample -benchmem ./dashboard/
func BenchmarkSample(b *testing.B) {
	var snap Snapshot
	for i := 0; i < 50; i++ {
		snap.Revisions = append(snap.Revisions, RevisionStats{Namespace: "default", Service: fmt.Sprintf("svc-%d", i%25),
			Revision: fmt.Sprintf("svc-%d-%05d", i%25, i), DesiredInstances: 3, ReadyInstances: 2, Requests: uint64(i * 1000)})
		snap.Deliveries = append(snap.Deliveries, DeliveryStats{Kind: "Trigger", Namespace: "default",
			Name: fmt.Sprintf("trigger-%d", i), Delivered: uint64(i * 100)})
	}
	for i := 0; i < 20; i++ {
		snap.Topics = append(snap.Topics, TopicStats{Topic: fmt.Sprintf("topic-%d", i), Produced: uint64(i * 500),
			Groups: []GroupStats{{"g1", 1}, {"g2", 2}, {"g3", 3}}})
	}
	c := clocktesting.NewFakeClock(t0)
	d, err := New(Options{Clock: c, Logger: quietLogger(), Metrics: MetricsFunc(func(context.Context) (Snapshot, error) {
		return snap, nil
	})})
	if err != nil {
		b.Fatal(err)
	}
	subs := make([]*subscriber, 20)
	for i := range subs {
		subs[i] = &subscriber{ch: make(chan event, subscriberBuffer)}
		d.subscribers[subs[i]] = struct{}{}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c.Step(time.Second)
		d.sample(ctx)
		for _, s := range subs { // drain as pages would, so nobody is cut off
			for len(s.ch) > 0 {
				<-s.ch
			}
		}
	}
}
