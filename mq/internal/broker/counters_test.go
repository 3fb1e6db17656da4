package broker

import (
	"fmt"
	"testing"

	"github.com/tide-run/tide/mq/message"
	"github.com/tide-run/tide/mq/mqmeta"
)

func TestCountersCapAndForget(t *testing.T) {
	var c Counters
	for i := range MaxGroupSeries + 5 {
		c.noteOut("t", fmt.Sprint("g", i), 1, 10)
	}
	n, overflow := 0, uint64(0)
	c.RangeOut(func(_, g string, s *OutStats) {
		n++
		if g == OverflowGroup {
			overflow = s.Messages.Load()
		}
	})
	if n != MaxGroupSeries+1 || overflow != 5 {
		t.Fatalf("%d series, %d in %s; want %d and 5", n, overflow, OverflowGroup, MaxGroupSeries+1)
	}
	c.ForgetTopic("t")
	n = 0
	c.RangeOut(func(string, string, *OutStats) { n++ })
	if n != 0 || c.groupSeries.Load() != 0 {
		t.Fatalf("after ForgetTopic: %d series, count %d", n, c.groupSeries.Load())
	}

	// Delay and half messages count under their real topic.
	c.noteIn([]*message.Message{
		{Topic: "orders", Body: make([]byte, 2000)},
		{Topic: mqmeta.ScheduleTopic, Properties: message.PropRealTopic + "\x01orders\x02", Body: []byte("x")},
		{Topic: mqmeta.HalfTopic, Properties: message.PropRealTopic + "\x01orders\x02", Body: []byte("y")},
	})
	got := map[string]uint64{}
	c.RangeIn(func(topic string, typ MessageType, s *InStats) {
		got[topic+"/"+typ.String()] = s.Messages.Load()
		if typ == Normal && (s.Sizes[1].Load() != 1 || s.Bytes.Load() != 2000) {
			t.Errorf("normal: sizes %v bytes %d; want one body in the 4 KiB bucket, 2000 bytes", s.Sizes[1].Load(), s.Bytes.Load())
		}
	})
	if got["orders/normal"] != 1 || got["orders/delay"] != 1 || got["orders/transaction"] != 1 || len(got) != 3 {
		t.Fatalf("in: %v", got)
	}
}

// BenchmarkNoteIn is the broker's cost of counting one produced message (metrics on).
func BenchmarkNoteIn(b *testing.B) {
	var c Counters
	msgs := []*message.Message{{Topic: "bench", Body: make([]byte, 1024)}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.noteIn(msgs)
		}
	})
}
