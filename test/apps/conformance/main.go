// Command conformance is the test program for tide's serving conformance tests, in the spirit of knative/serving's
// test images (runtime, httpproxy, timeout, failing): one binary whose behaviour is chosen per request or by env.
//
// It honours $PORT. Endpoints:
//
//	/            "<K_REVISION>\n" (tests use it to see which revision answered)
//	/env         the process environment as a JSON object
//	/headers     the request as JSON: {"host": ..., "headers": {...}}
//	/sleep?ms=N  sleeps N milliseconds, then answers JSON {"revision", "inflight"}: inflight is how many requests
//	             this process had in progress when the request arrived, counting itself
//	/maxinflight the largest inflight ever seen
//	/echo        answers with the request body and Content-Type (X-Echo-Method, X-Echo-Content-Length)
//	/upgrade     switches to the "echo" protocol (Upgrade: echo) and echoes bytes until closed
//	/stream?chunks=N&gapms=M  N flushed lines "chunk i", M milliseconds apart
//	/proto       the request's protocol ("HTTP/1.1", or "HTTP/2.0" when CONFORMANCE_H2C is set and the caller
//	             speaks h2c)
//	/status/N    answers with status code N (probe tests)
//	/exit?code=N exits the process with code N after answering
//
// Start-up modes through CONFORMANCE_MODE: "crash" writes a line to stderr and exits 3 at once; "never-listen" logs
// and then blocks forever without opening a port. CONFORMANCE_STARTUP_DELAY_MS delays listening.
// On SIGTERM it stops accepting, finishes in-flight requests and exits 0 (as a well-behaved Knative app does).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(0)
	switch os.Getenv("CONFORMANCE_MODE") {
	case "crash":
		fmt.Fprintln(os.Stderr, "conformance: configured to crash: missing DATABASE_URL")
		os.Exit(3)
	case "never-listen":
		fmt.Println("conformance: configured never to listen")
		// Block on a signal rather than select{}: the runtime would report a deadlock and exit.
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		<-term
		os.Exit(0)
	}
	if ms, err := strconv.Atoi(os.Getenv("CONFORMANCE_STARTUP_DELAY_MS")); err == nil && ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	rev := os.Getenv("K_REVISION")

	var inflight, maxInflight atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, rev)
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, _ *http.Request) {
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		writeJSON(w, env)
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"host": r.Host, "headers": r.Header})
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			m := maxInflight.Load()
			if n <= m || maxInflight.CompareAndSwap(m, n) {
				break
			}
		}
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		writeJSON(w, map[string]any{"revision": rev, "inflight": n})
	})
	mux.HandleFunc("/maxinflight", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"max": maxInflight.Load()})
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.Header().Set("X-Echo-Method", r.Method)
		w.Header().Set("X-Echo-Content-Length", strconv.FormatInt(r.ContentLength, 10))
		// Read everything before answering: Go's HTTP/1 server (like most) is not full duplex by default.
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = w.Write(b)
	})
	mux.HandleFunc("/upgrade", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw) // echo until the client closes
	})
	mux.HandleFunc("/reply-headers", func(w http.ResponseWriter, r *http.Request) {
		// Answers a CloudEvent (binary mode) whose data are the request's headers: a Trigger publishes it back into
		// its Broker as a reply, so a test can see what the instance received (traceparent, ce-* headers).
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Ce-Specversion", "1.0")
		w.Header().Set("Ce-Id", "reply-"+r.Header.Get("Ce-Id"))
		w.Header().Set("Ce-Source", "/conformance/"+rev)
		w.Header().Set("Ce-Type", "dev.tide.conformance.headers")
		writeJSON(w, map[string]any{"host": r.Host, "headers": r.Header})
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil || code < 100 || code > 599 {
			code = http.StatusBadRequest
		}
		w.WriteHeader(code)
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		fmt.Fprintln(w, "exiting")
		w.(http.Flusher).Flush()
		fmt.Fprintf(os.Stderr, "conformance: exiting with code %d on request\n", code)
		os.Exit(code)
	})

	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("chunks"))
		gap, _ := strconv.Atoi(r.URL.Query().Get("gapms"))
		for i := range n {
			if i > 0 {
				time.Sleep(time.Duration(gap) * time.Millisecond)
			}
			fmt.Fprintf(w, "chunk %d\n", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/proto", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, r.Proto)
	})

	srv := &http.Server{Addr: ":" + port, Handler: mux}
	if os.Getenv("CONFORMANCE_H2C") != "" {
		// HTTP/2 without TLS, as a Knative container port named h2c (gRPC) serves it.
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	go func() {
		<-stop
		fmt.Println("conformance: SIGTERM, draining")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	fmt.Printf("conformance: revision %s listening on %s\n", rev, port)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
