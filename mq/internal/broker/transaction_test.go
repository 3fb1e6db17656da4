package broker

import (
	"strconv"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
	"github.com/tide-run/tide/mq/remoting"
)

func TestTransactionDecisionSurvivesRestartOfTheChecker(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := newTestBroker(t, fc)
	if err := b.CreateTopic(mqmeta.TopicConfig{TopicName: "t", ReadQueueNums: 1, WriteQueueNums: 1}); err != nil {
		t.Fatal(err)
	}
	var halves []int64
	for i := 0; i < 3; i++ {
		m := &message.Message{Topic: "t", Body: []byte{byte(i)},
			Properties: message.FormatProperties(map[string]string{message.PropProducerGroup: "pg", message.PropTxPrepared: "true"})}
		b.prepareHalf(m)
		res, _, err := b.st.Put([]*message.Message{m})
		if err != nil {
			t.Fatal(err)
		}
		halves = append(halves, res[0].Pos)
	}
	end := func(i int, decision int) *remoting.Command {
		return b.handleEndTransaction(remoting.NewRequest(remoting.EndTransaction, map[string]string{"producerGroup": "pg",
			"tranStateTableOffset": strconv.Itoa(i), "commitLogOffset": strconv.FormatInt(halves[i], 10),
			"commitOrRollback": strconv.Itoa(decision)}, nil))
	}
	if r := end(0, txCommit); r.Code != remoting.Success {
		t.Fatal(r.Remark)
	}
	if r := end(2, txRollback); r.Code != remoting.Success {
		t.Fatal(r.Remark)
	}
	if r := end(1, 99); r.Code == remoting.Success {
		t.Fatal("bad decision accepted")
	}
	if r := b.handleEndTransaction(remoting.NewRequest(remoting.EndTransaction, map[string]string{"producerGroup": "other",
		"tranStateTableOffset": "1", "commitLogOffset": strconv.FormatInt(halves[1], 10), "commitOrRollback": "8"}, nil)); r.Code == remoting.Success {
		t.Fatal("another group ended the transaction")
	}
	if got := b.st.MaxOffset("t", 0); got != 1 {
		t.Fatalf("%d messages committed, want 1", got)
	}
	// A new checker (as after a restart) rebuilds the decisions from the op topic: offset 1 is the only open one.
	t2 := newTransactions(b)
	fc.Step(time.Minute)
	t2.checkOnce(fc.Now())
	if t2.progress != 1 || !t2.resolved[2] || t2.checks[1] == nil || t2.checks[1].times != 1 {
		t.Fatalf("progress %d resolved %v checks %+v", t2.progress, t2.resolved, t2.checks)
	}
	// Fifteen checks later the half message is discarded and progress passes everything.
	for i := 0; i < 20; i++ {
		fc.Step(time.Minute)
		t2.checkOnce(fc.Now())
	}
	t2.checkOnce(fc.Now())
	if t2.progress != 3 {
		t.Fatalf("progress %d after giving up, want 3", t2.progress)
	}
}
