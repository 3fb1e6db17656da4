package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// connCounter serves "ok" (or what handler writes) and counts the TCP connections the server accepted.
func connCounter(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// get runs one request through the pool the way forward does: read the body to its end, then release.
func poolGet(t *testing.T, p *connPool, ctx context.Context, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, pc, err := p.roundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	p.release(pc, err == nil && !resp.Close)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestConnPoolReusesConnections(t *testing.T) {
	srv, conns := connCounter(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	p := newConnPool(srv.Listener.Addr().String(), 4)
	for range 5 {
		if code, body := poolGet(t, p, context.Background(), "/"); code != 200 || body != "ok" {
			t.Fatalf("got %d %q", code, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 5 sequential requests, want 1", n)
	}
}

// An idle connection the instance closed is retried on a new one, as http.Transport does for GET.
func TestConnPoolRetriesStaleConnection(t *testing.T) {
	srv, conns := connCounter(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	p := newConnPool(srv.Listener.Addr().String(), 4)
	poolGet(t, p, context.Background(), "/")
	srv.CloseClientConnections()
	if code, body := poolGet(t, p, context.Background(), "/"); code != 200 || body != "ok" {
		t.Fatalf("got %d %q", code, body)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// A response with Connection: close, or one whose body was not read to its end, never returns to the pool.
func TestConnPoolDoesNotReuseClosedOrUnfinished(t *testing.T) {
	srv, conns := connCounter(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, strings.Repeat("x", 100))
	})
	p := newConnPool(srv.Listener.Addr().String(), 4)
	poolGet(t, p, context.Background(), "/close")
	poolGet(t, p, context.Background(), "/")
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections after Connection: close, want 2", n)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.addr+"/", nil)
	_, pc, err := p.roundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	p.release(pc, false) // body unread
	poolGet(t, p, context.Background(), "/")
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections after an unfinished body, want 3", n)
	}
}

// A cancelled context cuts a request waiting for its response, and the connection is not reused.
func TestConnPoolCancel(t *testing.T) {
	block := make(chan struct{})
	srv, _ := connCounter(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "ok")
	})
	defer close(block)
	p := newConnPool(srv.Listener.Addr().String(), 4)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/block", nil)
	errc := make(chan error, 1)
	go func() {
		_, _, err := p.roundTrip(req)
		errc <- err
	}()
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("roundTrip succeeded after cancel")
	}
	if code, _ := poolGet(t, p, context.Background(), "/"); code != 200 {
		t.Fatalf("status %d after a cancelled request", code)
	}
}

func TestConnPoolRefusedIsDialError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p := newConnPool(addr, 4)
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	_, _, err = p.roundTrip(req)
	if !refused(err) {
		t.Fatalf("err = %v, want a refused dial", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Fatalf("err = %T", err)
	}
}
