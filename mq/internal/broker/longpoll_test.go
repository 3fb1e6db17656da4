package broker

import "testing"

// TestArrivalWhileWakeRereadsIsNotLost reproduces the interleaving that once left consumers waiting for their whole
// 20 s suspend: wake takes the suspended pulls out of the map, re-reads them (nothing yet), a message lands before
// they are parked again, then they are parked. The arrival must make them be read again.
func TestArrivalWhileWakeRereadsIsNotLost(t *testing.T) {
	l := newLongPolls(nil)
	p := &pullReq{topic: "t", queue: 1}
	// wake has taken p out (nothing waits on t/1) and its read found nothing; now a message lands.
	l.arrived("t", 1)
	if !l.repark([]*pullReq{p}) {
		t.Fatal("a message that landed while the pull was being re-read was not noticed when it was parked again")
	}
	if got := len(l.waiting[qkey{"t", 1}]); got != 1 {
		t.Fatalf("%d pulls parked, want 1", got)
	}
}

// TestReparkWithoutArrivalDoesNotSpin: with no new message the pull stays parked quietly (no wake loop).
func TestReparkWithoutArrivalDoesNotSpin(t *testing.T) {
	l := newLongPolls(nil)
	l.arrived("other", 0) // an arrival elsewhere does not concern this pull
	if l.repark([]*pullReq{{topic: "t", queue: 1}}) {
		t.Fatal("repark asked for another read though nothing arrived on the pull's queue")
	}
	select {
	case <-l.kick:
		t.Fatal("an arrival on a queue nobody waits on woke the poller")
	default:
	}
}
