package activator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// fakeBackend is an in-memory backend: these tests check the throttler's slot accounting; the gateway's tests run
// the same code against real processes.
type fakeBackend struct {
	name     string
	inflight atomic.Int64
	max      atomic.Int64
	draining atomic.Bool
}

func (b *fakeBackend) TryAcquire() bool {
	if b.draining.Load() {
		return false
	}
	n := b.inflight.Add(1)
	for {
		m := b.max.Load()
		if n <= m || b.max.CompareAndSwap(m, n) {
			return true
		}
	}
}
func (b *fakeBackend) Release()         { b.inflight.Add(-1) }
func (b *fakeBackend) InFlight() int    { return int(b.inflight.Load()) }
func (b *fakeBackend) HostPort() string { return b.name }

type countingPoker struct{ n atomic.Int64 }

func (p *countingPoker) Poke(types.NamespacedName) { p.n.Add(1) }

var rev = types.NamespacedName{Namespace: "default", Name: "r-00001"}

func acquireAsync(t *Throttler, ctx context.Context) chan Backend {
	ch := make(chan Backend, 1)
	go func() {
		b, err := t.Acquire(ctx)
		if err != nil {
			close(ch)
			return
		}
		ch <- b
	}()
	return ch
}

func waitQueued(t *testing.T, th *Throttler, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for th.Stats().Queued != n {
		if time.Now().After(deadline) {
			t.Fatalf("queued = %d, want %d", th.Stats().Queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// receive waits for a backend with a deadline, so a lost hand-over fails the test instead of hanging it.
func receive(t *testing.T, ch chan Backend) Backend {
	t.Helper()
	select {
	case b := <-ch:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no backend handed over within 5s")
		return nil
	}
}

// receiveEither returns the first backend handed to a or b, and the channel still waiting.
func receiveEither(t *testing.T, a, b chan Backend) (Backend, chan Backend) {
	t.Helper()
	select {
	case got := <-a:
		return got, b
	case got := <-b:
		return got, a
	case <-time.After(5 * time.Second):
		t.Fatal("no backend handed over within 5s")
		return nil, nil
	}
}

func TestHoldsAtZeroPokesAndReleasesOnReady(t *testing.T) {
	poker := &countingPoker{}
	th := New(Options{Revision: rev, ContainerConcurrency: 1, Poker: poker})
	ctx := context.Background()
	a, b := acquireAsync(th, ctx), acquireAsync(th, ctx)
	waitQueued(t, th, 2)
	if got := poker.n.Load(); got != 1 {
		t.Fatalf("pokes = %d, want 1 (once when the queue starts)", got)
	}
	if !th.Stats().ActivatorInPath {
		t.Fatal("a revision at zero has the activator in the path")
	}
	be := &fakeBackend{name: "one"}
	th.Add(be)
	// The two goroutines race to enqueue, so either may be served first; the other must wait for a release.
	first, waiting := receiveEither(t, a, b)
	if first != be {
		t.Fatalf("got %v", first)
	}
	select {
	case <-waiting:
		t.Fatal("second request admitted past containerConcurrency 1")
	case <-time.After(20 * time.Millisecond):
	}
	th.Release(first)
	th.Release(receive(t, waiting))
	if be.max.Load() != 1 {
		t.Fatalf("max in flight %d", be.max.Load())
	}
}

func TestQueueProxyDepthThen503(t *testing.T) {
	th := New(Options{Revision: rev, ContainerConcurrency: 1})
	be := &fakeBackend{name: "one"}
	th.Add(be)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	held, err := th.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var waiting []chan Backend
	for range QueueDepthPerSlot {
		waiting = append(waiting, acquireAsync(th, ctx))
	}
	waitQueued(t, th, QueueDepthPerSlot)
	if _, err := th.Acquire(ctx); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("err = %v, want ErrQueueFull", err)
	}
	// With the activator in the path the same request waits instead.
	th.SetActivatorInPath(true)
	extra := acquireAsync(th, ctx)
	waitQueued(t, th, QueueDepthPerSlot+1)
	th.Release(held)
	// Waiters are served in queue order, which is not spawn order: release each as it is served.
	var wg sync.WaitGroup
	for _, w := range append(waiting, extra) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			th.Release(<-w)
		}()
	}
	wg.Wait()
	if be.max.Load() != 1 || be.InFlight() != 0 {
		t.Fatalf("max %d inflight %d", be.max.Load(), be.InFlight())
	}
}

func TestTimeoutLeavesQueue(t *testing.T) {
	th := New(Options{Revision: rev, ContainerConcurrency: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := th.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if q := th.Stats().Queued; q != 0 {
		t.Fatalf("queued %d after timeout", q)
	}
}

func TestDrainingBackendLeavesRotation(t *testing.T) {
	th := New(Options{Revision: rev, ContainerConcurrency: 0})
	a, b := &fakeBackend{name: "a"}, &fakeBackend{name: "b"}
	th.Add(a)
	th.Add(b)
	a.draining.Store(true)
	for range 5 {
		got, err := th.Acquire(context.Background())
		if err != nil || got != b {
			t.Fatalf("got %v %v", got, err)
		}
		th.Release(got)
	}
	if th.Stats().Ready != 1 {
		t.Fatalf("ready %d", th.Stats().Ready)
	}
	// All draining: requests are held until a new backend arrives, not refused.
	b.draining.Store(true)
	ch := acquireAsync(th, context.Background())
	waitQueued(t, th, 1)
	c := &fakeBackend{name: "c"}
	th.Add(c)
	if got := <-ch; got != c {
		t.Fatalf("got %v", got)
	}
}

func TestLeastLoaded(t *testing.T) {
	th := New(Options{Revision: rev, ContainerConcurrency: 10})
	bs := []*fakeBackend{{name: "a"}, {name: "b"}, {name: "c"}}
	for _, b := range bs {
		th.Add(b)
	}
	for range 9 {
		if _, err := th.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range bs {
		if b.InFlight() != 3 {
			t.Fatalf("%s has %d in flight, want 3 each", b.name, b.InFlight())
		}
	}
}

// TestConcurrencyLimitUnderChurn hammers a throttler while backends come and go and checks the hard limit holds
// and every request is served.
func TestConcurrencyLimitUnderChurn(t *testing.T) {
	const cc = 3
	th := New(Options{Revision: rev, ContainerConcurrency: cc})
	var backends []*fakeBackend
	for i := range 4 {
		b := &fakeBackend{name: fmt.Sprint(i)}
		backends = append(backends, b)
		th.Add(b)
	}
	var wg sync.WaitGroup
	var served atomic.Int64
	stop := make(chan struct{})
	go func() { // churn: drain and re-add backends
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b := backends[i%len(backends)]
			th.Remove(b)
			time.Sleep(200 * time.Microsecond)
			th.Add(b)
		}
	}()
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				b, err := th.Acquire(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				served.Add(1)
				th.Release(b)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if served.Load() != 32*200 {
		t.Fatalf("served %d", served.Load())
	}
	for _, b := range backends {
		if b.max.Load() > cc {
			t.Fatalf("backend %s saw %d concurrent requests, limit %d", b.name, b.max.Load(), cc)
		}
	}
}
