package mq_test

import (
	"context"
	"slices"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"

	"github.com/tide-run/tide/mq/admin"
	"github.com/tide-run/tide/mq/mqmeta"
)

// A 5.x consumer is listed in its group's consumers (GET_CONSUMER_LIST_BY_GROUP: what `tide mq group lag`, the
// dashboard and mqadmin read), as Apache's proxy registers it with the broker, and leaves the list when it stops.
func TestGRPCConsumerInGroupList(t *testing.T) {
	t.Parallel() // its own server on free ports; most of the time is the client starting and stopping
	srv := runGRPC(t)
	createTopic5(t, srv, "listed5", mqmeta.MessageTypeNormal, 1)
	c, err := rmq.NewSimpleConsumer(&rmq.Config{Endpoint: srv.GRPCAddr(), ConsumerGroup: "g-listed5"},
		rmq.WithSimpleAwaitDuration(time.Second), rmq.WithSimpleSubscriptionExpressions(map[string]*rmq.FilterExpression{"listed5": rmq.SUB_ALL}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ids := srv.GRPCClients()
	if len(ids) != 1 {
		t.Fatalf("gRPC clients %v, want the consumer", ids)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm, err := admin.Dial(ctx, srv.NameServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	got, err := adm.ConsumerIDs(ctx, "g-listed5")
	if err != nil || !slices.Equal(got, ids) {
		t.Fatalf("consumers of g-listed5 over the protocol: %v %v, want %v", got, err, ids)
	}
	if got, _ := adm.ConsumerIDs(ctx, "other"); len(got) != 0 {
		t.Fatalf("consumers of another group: %v", got)
	}
	lag, err := adm.GroupLag(ctx, "g-listed5")
	if err != nil || !slices.Equal(lag.Consumers, ids) {
		t.Fatalf("group lag's consumers %v %v, want %v", lag.Consumers, err, ids)
	}
	if err := c.GracefulStop(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(srv.ConsumerIDs("g-listed5")) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("consumers after the client stopped: %v", srv.ConsumerIDs("g-listed5"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
