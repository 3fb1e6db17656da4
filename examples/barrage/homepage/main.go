// Command homepage is seed 003's HomePage (demo-barrage), a Knative Service: a bullet-comment page where a person
// sets a message, a concurrency and a duration and presses Send; the page publishes the comments to the queue
// (RocketMQ, with the official Go client) and shows each one flying across the stage once the processor has written
// it to table storage (read back and streamed to the page as server-sent events).
//
// Environment (the Knative runtime contract, the seed's variables, and this program's own):
//
//	PORT                  port to listen on (default 8080)
//	BARRAGE_QUEUE         rocketmq (default) or kafka
//	KAFKA_SERVER          with kafka: bootstrap servers, host:port,... (KAFKA_USER/KAFKA_PWD: SASL PLAIN when set)
//	ROCKETMQ_NAMESRV      RocketMQ name servers, host:port;... (default 127.0.0.1:9876, tide's)
//	ROCKETMQ_TOPIC        the topic (default the seed's KAFKA_TOPIC, else barrage-info)
//	TABLE_NAME, OTS_*, BARRAGE_DB, BARRAGE_DB_DRIVER, BARRAGE_DB_DSN  table storage (see demo/barrage.ConfigFromEnv)
//	BARRAGE_TRACE_URL     link each comment to its trace: a URL with {traceId}
//	OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_*  record spans sender, receiver and result and export them with OTLP
//	TRACING, TRACE_NAME*, PARENT_SPAN, SUB_SPAN*  the seed's settings, accepted; span names are fixed
//
// On SIGTERM it ends the event streams, lets Sends in flight finish (up to 30 s) and exits 0.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/demo/barrage"
)

func main() { os.Exit(run(os.Getenv)) }

func run(getenv func(string) string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("service", "barrage-homepage",
		"revision", getenv("K_REVISION"), "pid", os.Getpid())
	port := getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		log.Error("PORT must be a port number", "PORT", port)
		return 2
	}
	rlog.SetLogLevel("warn") // the client logs every route refresh at info level
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg := barrage.ConfigFromEnv(getenv)
	table, err := barrage.OpenTable(ctx, cfg, log)
	if err != nil {
		log.Error("cannot open table storage", "driver", cfg.Driver, "table", cfg.Table, "err", err)
		return 1
	}
	defer table.Close()
	tracer, err := barrage.NewTracer(ctx, getenv, "barrage-homepage")
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
	pub, err := barrage.PublisherFromEnv(ctx, getenv)
	if err != nil {
		log.Error("cannot start the queue producer", "err", err)
		return 1
	}
	defer pub.Close()
	page, err := barrage.NewHomePage(barrage.HomePageOptions{Table: table, Publisher: pub,
		TraceURL: getenv("BARRAGE_TRACE_URL"), Tracer: tracer, Logger: log})
	if err != nil {
		log.Error("cannot build the page", "err", err)
		return 1
	}
	go func() { <-ctx.Done(); page.Close() }()
	err = barrage.Serve(ctx, ":"+port, page, 30*time.Second, func(addr string) {
		log.Info("barrage homepage listening", "addr", addr, "topic", barrage.TopicFromEnv(getenv), "table", cfg.Table)
	})
	if err != nil {
		log.Error("barrage homepage stopped", "err", err)
		return 1
	}
	log.Info("barrage homepage stopped", "sent", page.Sent())
	return 0
}
