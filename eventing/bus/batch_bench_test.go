package bus

import (
	"context"
	"strconv"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/internal/gcfloor"
	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/mqtest"
)

// BenchmarkSendKeys: 32 concurrent synchronous Sends (as 32 ingress requests) keyed over 8 or 1,000 keys (a Broker's
// events are keyed by source), with batching on. It reports sends/s and round trips per send: with many keys a batch
// is worth as many round trips as it has groups.
//
//	go test ./eventing/bus -run '^$' -bench SendKeys -benchtime 20000x -count 5
func BenchmarkSendKeys(b *testing.B) {
	gcfloor.InstallForBenchmark(b)
	for _, keys := range []int{8, 1000} {
		b.Run("keys="+strconv.Itoa(keys), func(b *testing.B) {
			rlog.SetLogLevel("error")
			s := mqtest.RunServer(b, mq.Options{})
			bus, err := NewRocketMQ(RocketMQOptions{NameServers: []string{s.NameServerAddr()}, Logger: quiet()})
			if err != nil {
				b.Fatal(err)
			}
			defer bus.Close()
			_ = bus.EnsureTopic(context.Background(), "bench")
			body := make([]byte, 100)
			names := make([]string, keys)
			for i := range names {
				names[i] = "/source/" + strconv.Itoa(i)
			}
			rt0 := bus.roundTrips.Load()
			b.SetParallelism(16) // 32 goroutines on 2 CPUs
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					if err := bus.Send(context.Background(), &Message{Topic: "bench", Body: body,
						Properties: map[string]string{"CE_id": "x"}, ShardingKey: names[(i*7919)%keys]}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
			b.ReportMetric(float64(bus.roundTrips.Load()-rt0)/float64(b.N), "roundtrips/send")
		})
	}
}
