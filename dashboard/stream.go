package dashboard

import (
	"fmt"
	"net/http"
	"time"
)

// subscriberBuffer is how many events a slow page may fall behind before its stream is closed. Closing (rather than
// dropping events) keeps the invariant that an open stream has every sample since its init event: the browser's
// EventSource reconnects and starts again from a fresh init.
const subscriberBuffer = 256

type event struct {
	name string
	data []byte
}

type subscriber struct {
	ch chan event // closed by broadcastLocked when the subscriber falls behind
}

// broadcastLocked queues an event for every subscriber without blocking. Caller holds d.mu.
func (d *Dashboard) broadcastLocked(name string, data []byte) {
	for s := range d.subscribers {
		select {
		case s.ch <- event{name, data}:
		default:
			close(s.ch)
			delete(d.subscribers, s)
			d.log.Warn("closing a slow dashboard stream; the page will reconnect")
		}
	}
}

// serveStream is GET /dashboard/api/stream: server-sent events. The first event, "init", carries the whole state
// (history, resources, status); then "sample" every interval, "resources" when the resource list changes, and
// "status" when a source starts or stops failing. The subscription is taken under the same lock as the init state,
// so no event falls between them.
func (d *Dashboard) serveStream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// A stream outlives any server write timeout meant for ordinary requests.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")

	sub := &subscriber{ch: make(chan event, subscriberBuffer)}
	d.mu.Lock()
	select {
	case <-d.done:
		d.mu.Unlock()
		http.Error(w, "dashboard is shutting down", http.StatusServiceUnavailable)
		return
	default:
	}
	init := d.stateLocked()
	d.subscribers[sub] = struct{}{}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.subscribers, sub)
		d.mu.Unlock()
	}()

	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	if writeEvent(w, event{"init", init}) != nil || rc.Flush() != nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-d.done:
			return
		case ev, ok := <-sub.ch:
			if !ok {
				return
			}
			if writeEvent(w, ev) != nil {
				return
			}
			// Write everything already queued before flushing once.
			for drained := false; !drained; {
				select {
				case ev, ok := <-sub.ch:
					if !ok {
						_ = rc.Flush()
						return
					}
					if writeEvent(w, ev) != nil {
						return
					}
				default:
					drained = true
				}
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}

// writeEvent writes one SSE event. data is single-line JSON (encoding/json never emits a raw newline).
func writeEvent(w http.ResponseWriter, ev event) error {
	_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, ev.data)
	return err
}
