package mq_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/tide-run/tide/mq"
)

type txListener struct {
	execute func(*primitive.Message) primitive.LocalTransactionState
	checks  atomic.Int32
}

func (l *txListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	return l.execute(m)
}

func (l *txListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	l.checks.Add(1)
	if string(m.Body) == "check-commit" {
		return primitive.CommitMessageState
	}
	return primitive.RollbackMessageState
}

func TestTransactionsCommitRollbackAndCheck(t *testing.T) {
	t.Parallel() // mostly waiting on the client's own timers
	srv := start(t, mq.Options{TransactionImmunity: 200 * time.Millisecond, TransactionCheckInterval: 200 * time.Millisecond})
	createTopic(t, srv, "tx", 2)
	l := &txListener{execute: func(m *primitive.Message) primitive.LocalTransactionState {
		switch string(m.Body) {
		case "commit":
			return primitive.CommitMessageState
		case "rollback":
			return primitive.RollbackMessageState
		}
		return primitive.UnknowState // decided later, when the broker checks
	}}
	tp, err := rocketmq.NewTransactionProducer(l, producer.WithNameServer([]string{srv.NameServerAddr()}),
		producer.WithGroupName("tx-pg"), producer.WithInstanceName(uniq("tx")))
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Start(); err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown()
	col := newCollector()
	c := newPushConsumer(t, srv, "g-tx", consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	c.Subscribe("tx", consumer.MessageSelector{}, col.fn)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	for _, body := range []string{"commit", "rollback", "check-commit", "check-rollback"} {
		r, err := tp.SendMessageInTransaction(context.Background(), primitive.NewMessage("tx", []byte(body)))
		if err != nil || r.Status != primitive.SendOK {
			t.Fatalf("%s: %v", body, err)
		}
	}
	waitFor(t, 20*time.Second, "committed messages", func() bool { return col.has("commit") && col.has("check-commit") })
	waitFor(t, 20*time.Second, "the check of the rolled-back one", func() bool { return l.checks.Load() >= 2 })
	// A sentinel sent afterwards arrives; rolled-back messages never do.
	sendBodies(t, srv, "tx", 0, 1)
	waitFor(t, 20*time.Second, "the sentinel", func() bool { return col.has("b-0") })
	if col.has("rollback") || col.has("check-rollback") {
		t.Fatal("a rolled-back message was delivered")
	}
	if col.count() != 3 {
		t.Fatalf("%d messages delivered, want 3", col.count())
	}
}
