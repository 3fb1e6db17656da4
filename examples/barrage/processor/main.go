// Command processor is seed 003's message-processing service (test-barrage-process), a Knative Service: it takes
// comment CloudEvents from the Trigger, normalises each comment and masks blocked words, and writes one row per
// comment to table storage (demo/barrage.Table), where the HomePage reads results back.
//
// Arguments: the seed runs its image with args [/manager] (its entrypoint's role); that argument, or "manager", is
// accepted and anything else refused.
//
// Environment (the Knative runtime contract, the seed's variables, and this program's own):
//
//	PORT                      port to listen on (default 8080)
//	K_REVISION                names the revision in logs
//	POD_NAME, POD_NAMESPACE   the seed's fieldRef variables: POD_NAME names this instance in the rows it writes
//	TABLE_NAME, OTS_*         the seed's table storage settings (see demo/barrage.ConfigFromEnv)
//	BARRAGE_DB, BARRAGE_DB_DRIVER, BARRAGE_DB_DSN  table storage here (default: SQLite at /tmp/tide-barrage/barrage.db)
//	BARRAGE_BLOCKED_WORDS     comma-separated words to mask (default: a small built-in list)
//	BARRAGE_WORK_MS           the time one comment's remote table write takes in the seed's deployment, held per
//	                          request so that containerConcurrency matters (default 150)
//	OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_*  record span "process" (a child of the delivery's traceparent) and export
//	                          it with OTLP
//	TRACE_NAME, PARENT_SPAN, SUB_SPAN, TRACING  the seed's tracing settings, accepted; span names are fixed, and
//	                          TRACING (Alibaba Cloud's endpoint, not OTLP) is ignored
//
// On SIGTERM it stops accepting, finishes the comments in flight (up to 30 s), removes its instance row and exits 0.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/tide-run/tide/demo/barrage"
)

func main() { os.Exit(run(os.Args[1:], os.Getenv)) }

func run(args []string, getenv func(string) string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("service", "barrage-process",
		"revision", getenv("K_REVISION"), "pid", os.Getpid())
	for _, a := range args {
		if a != "/manager" && a != "manager" {
			log.Error("unknown argument: the processor takes only the seed's role argument /manager", "arg", a)
			return 2
		}
	}
	port := getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		log.Error("PORT must be a port number", "PORT", port)
		return 2
	}
	work := 150 * time.Millisecond
	if v := getenv("BARRAGE_WORK_MS"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms < 0 {
			log.Error("BARRAGE_WORK_MS must be a non-negative number of milliseconds", "BARRAGE_WORK_MS", v)
			return 2
		}
		work = time.Duration(ms) * time.Millisecond
	}
	instance := getenv("POD_NAME")
	if instance == "" {
		host, _ := os.Hostname()
		instance = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg := barrage.ConfigFromEnv(getenv)
	table, err := barrage.OpenTable(ctx, cfg, log)
	if err != nil {
		log.Error("cannot open table storage", "driver", cfg.Driver, "table", cfg.Table, "err", err)
		return 1
	}
	defer table.Close()
	tracer, err := barrage.NewTracer(ctx, getenv, "barrage-processor")
	if err != nil {
		log.Error("cannot set up tracing", "err", err)
		return 2
	}
	defer func() { // export the last spans before exiting
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tracer.Shutdown(sctx); err != nil {
			log.Warn("exporting the last spans", "err", err)
		}
	}()
	proc, err := barrage.NewProcessor(barrage.ProcessorOptions{Table: table, Instance: instance,
		Blocked: barrage.BlockedSet(getenv("BARRAGE_BLOCKED_WORDS")), Work: work, Tracer: tracer, Logger: log})
	if err != nil {
		log.Error("cannot build the processor", "err", err)
		return 1
	}
	// Heartbeat this instance's row, so the page counts the processor instances alive.
	started := time.Now()
	hbCtx, hbStop := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			if err := table.Heartbeat(hbCtx, instance, started, time.Now()); err != nil && hbCtx.Err() == nil {
				log.Warn("heartbeat", "err", err)
			}
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	err = barrage.Serve(ctx, ":"+port, proc, 30*time.Second, func(addr string) {
		log.Info("barrage processor listening", "addr", addr, "instance", instance, "table", cfg.Table, "workMs", work.Milliseconds())
	})
	hbStop()
	<-hbDone
	gctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if gerr := table.Gone(gctx, instance); gerr != nil {
		log.Warn("cannot remove the instance row", "err", gerr)
	}
	if err != nil {
		log.Error("barrage processor stopped", "err", err)
		return 1
	}
	st := proc.Stats()
	log.Info("barrage processor stopped", "processed", st.Processed, "duplicates", st.Duplicates, "rejected", st.Rejected,
		"deadLettered", st.DeadLettered)
	return 0
}
