package store

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tide-run/tide/mq/internal/commitlog"
	"github.com/tide-run/tide/mq/message"
)

// BenchmarkPutSync32 measures group commit: 32 writers each waiting for the fsync covering its 1 KiB message.
// go test ./mq/store -run '^$' -bench PutSync32 -benchtime 5000x
func BenchmarkPutSync32(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir(), FlushMode: commitlog.FlushSync})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := make([]byte, 1024)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				_, end, err := s.Put([]*message.Message{{Topic: "t", QueueID: int32(w % 4), Body: body}})
				if err != nil {
					b.Error(err)
					return
				}
				done := make(chan error, 1)
				s.WhenFlushed(end, func(err error) { done <- err })
				if err := <-done; err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
