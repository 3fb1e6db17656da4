// Command hello is the smallest Knative-style HTTP program: it answers "Hello World!" on $PORT.
//
// It is the subject of the serving cold-start benchmark (image: ko://github.com/tide-run/tide/test/apps/hello), so it
// does nothing before listening: every millisecond spent here would count as platform cold start.
//
// It is also the README's example subscriber (examples/hello/): a request carrying a CloudEvent (a ce-id header, as
// a Trigger delivers in binary mode) is logged and answered 202 with an empty body, because a Knative Broker counts a
// non-empty reply that is not a CloudEvent as a failed delivery.
package main

import (
	"io"
	"log"
	"net/http"
	"os"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	target := os.Getenv("TARGET")
	if target == "" {
		target = "World"
	}
	body := []byte("Hello " + target + "!\n")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("Ce-Id"); id != "" {
			data, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
			log.Printf("event %s of type %s from %s: %s", id, r.Header.Get("Ce-Type"), r.Header.Get("Ce-Source"), data)
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
