// Command order-service is the food-delivery application's order service, a Knative Service: it receives order
// CloudEvents from the Trigger, validates them, does some simulated work and stores each order once in SQLite.
//
// Environment (the Knative runtime contract plus its own settings):
//
//	PORT           port to listen on (default 8080; 0 picks a free one, printed on stdout)
//	K_SERVICE, K_CONFIGURATION, K_REVISION  set by Knative / tide; name this instance in logs and stored rows
//	ORDER_DB       SQLite file (default $TIDE_DATA_DIR/food-delivery/orders.db, TIDE_DATA_DIR default ./.tide)
//	ORDER_WORK_MS  simulated work per order in milliseconds (default 80)
//	ORDER_LOG      log level: debug, info, warn, error (default info)
//
// On SIGTERM it stops accepting, finishes the orders in flight (up to 30 s) and exits 0.
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

	"github.com/tide-run/tide/demo/fooddelivery"
)

func main() {
	os.Exit(run(os.Getenv))
}

func run(getenv func(string) string) int {
	var level slog.Level
	if err := level.UnmarshalText([]byte(orDefault(getenv("ORDER_LOG"), "info"))); err != nil {
		fmt.Fprintf(os.Stderr, "order-service: ORDER_LOG: %v\n", err)
		return 2
	}
	host, _ := os.Hostname()
	instance := fmt.Sprintf("%s/%s/%d", orDefault(getenv("K_REVISION"), "local"), host, os.Getpid())
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With(
		"service", getenv("K_SERVICE"), "revision", getenv("K_REVISION"), "pid", os.Getpid())

	port := orDefault(getenv("PORT"), "8080")
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		log.Error("PORT must be a port number", "PORT", port)
		return 2
	}
	workMS, err := strconv.Atoi(orDefault(getenv("ORDER_WORK_MS"), "80"))
	if err != nil || workMS < 0 {
		log.Error("ORDER_WORK_MS must be a non-negative number of milliseconds", "ORDER_WORK_MS", getenv("ORDER_WORK_MS"))
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	dbPath := fooddelivery.DefaultDBPath(getenv)
	store, err := fooddelivery.OpenStore(ctx, fooddelivery.StoreOptions{Path: dbPath, Logger: log})
	if err != nil {
		log.Error("cannot open the order store", "path", dbPath, "err", err)
		return 1
	}
	defer store.Close()
	svc, err := fooddelivery.NewService(fooddelivery.ServiceOptions{Store: store,
		Work: time.Duration(workMS) * time.Millisecond, Instance: instance, Logger: log})
	if err != nil {
		log.Error("cannot build the service", "err", err)
		return 1
	}
	err = fooddelivery.ListenAndServe(ctx, ":"+port, svc, 30*time.Second, func(addr string) {
		// One machine-readable line on stdout, so whoever started us with PORT=0 learns the port.
		fmt.Printf("listening on %s\n", addr)
		log.Info("order service listening", "addr", addr, "db", dbPath, "workMs", workMS)
	})
	if err != nil {
		log.Error("order service stopped", "err", err)
		return 1
	}
	st := svc.Stats()
	log.Info("order service stopped", "stored", st.Stored, "duplicates", st.Duplicates, "rejected", st.Rejected)
	return 0
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
