// Command hello is the smallest Knative-style HTTP program: it answers "Hello World!" on $PORT.
//
// It is the subject of the serving cold-start benchmark (image: ko://github.com/tide-run/tide/test/apps/hello), so it
// does nothing before listening: every millisecond spent here would count as platform cold start.
package main

import (
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
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
