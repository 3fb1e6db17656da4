package delivery

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSendReusesConnections: concurrent deliveries to one subscriber ride a pool of kept-alive connections, at most
// about one per concurrent delivery, instead of dialing per event (a transport without keep-alive, or a response
// body left unread, would dial for every event: a handshake and a TIME_WAIT socket per event on both ends).
func TestSendReusesConnections(t *testing.T) {
	const senders, each = 16, 25
	var conns atomic.Int64
	// The subscriber holds each request until all senders have one in flight, so every round really has 16
	// concurrent deliveries (on two cores a fast handler would let them run nearly one at a time).
	var mu sync.Mutex
	arrived, gate := 0, make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		arrived++
		g := gate
		if arrived%senders == 0 {
			close(gate)
			gate = make(chan struct{})
		}
		mu.Unlock()
		select {
		case <-g:
		case <-time.After(10 * time.Second):
			t.Error("a round of concurrent deliveries never completed")
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	target, _ := url.Parse(srv.URL)
	s := New(Options{})
	var wg sync.WaitGroup
	var delivered atomic.Int64
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if res := s.Send(context.Background(), target, testEvent(), Spec{}); res.Outcome == Delivered {
					delivered.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if delivered.Load() != senders*each {
		t.Fatalf("delivered %d of %d", delivered.Load(), senders*each)
	}
	// A dial started for a request that then gets a connection freed meanwhile still adds one to the pool, so the
	// bound is twice the concurrency, far below one per event.
	if n := conns.Load(); n > 2*senders {
		t.Fatalf("%d deliveries opened %d connections; want at most %d (kept-alive connections reused)", senders*each, n, 2*senders)
	}
	t.Logf("%d deliveries over %d connections", senders*each, conns.Load())
}
