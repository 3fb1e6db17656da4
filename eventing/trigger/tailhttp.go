package trigger

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/tide-run/tide/eventing/bus"
)

// TailHandler serves `tide events tail --broker NAME` over HTTP: GET
// ?namespace=NS&broker=NAME streams every CloudEvent entering the Broker from
// now on as newline-delimited JSON (the structured JSON event format, one
// event per line), flushed per event, until the client goes away. topicFor
// resolves a Broker to its topic (false: 404). The lead mounts it on the API.
func TailHandler(b bus.Bus, topicFor func(namespace, broker string) (string, bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
			return
		}
		ns, name := r.URL.Query().Get("namespace"), r.URL.Query().Get("broker")
		if ns == "" {
			ns = "default"
		}
		if name == "" {
			http.Error(w, "query parameter broker: required", http.StatusBadRequest)
			return
		}
		topic, ok := topicFor(ns, name)
		if !ok {
			http.Error(w, "broker "+ns+"/"+name+" not found", http.StatusNotFound)
			return
		}
		flusher, _ := w.(http.Flusher)
		// fn runs on consumer goroutines; mu serializes writes to w, and done
		// stops writing once the handler has returned.
		var mu sync.Mutex
		done := false
		write := func(ev *event.Event) {
			line, err := json.Marshal(ev)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if done {
				return
			}
			_, _ = w.Write(append(line, '\n'))
			if flusher != nil {
				flusher.Flush()
			}
		}
		sub, err := Tail(r.Context(), b, TailOptions{Topic: topic}, write)
		if err != nil {
			http.Error(w, "tail: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		mu.Lock()
		w.WriteHeader(http.StatusOK)
		if flusher != nil {
			flusher.Flush()
		}
		mu.Unlock()
		<-r.Context().Done()
		mu.Lock()
		done = true
		mu.Unlock()
		_ = sub.Close()
	})
}
