package mq

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tide-run/tide/mq/remoting"
)

// BenchmarkOnReply is the cost of observing one answered request in rocketmq_rpc_latency (metrics on).
func BenchmarkOnReply(b *testing.B) {
	s, err := New(Options{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.RegisterMetrics(prometheus.NewRegistry()); err != nil {
		b.Fatal(err)
	}
	req := &remoting.Command{Code: remoting.SendMessageV2}
	resp := &remoting.Command{Code: remoting.Success}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.metrics.onReply(req, resp, 300*time.Microsecond)
		}
	})
}
