package fooddelivery

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// BenchmarkSaveOrder measures stored orders per second on one SQLite file from parallel goroutines of one process
// (go test -bench SaveOrder -cpu 1,2,8 ./demo/fooddelivery/). The demo's lunch peak needs about 200/s.
func BenchmarkSaveOrder(b *testing.B) {
	s, err := OpenStore(context.Background(), StoreOptions{Path: filepath.Join(b.TempDir(), "orders.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.SaveOrder(context.Background(), testOrder(fmt.Sprint("b-", seq.Add(1))), OrderMeta{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
