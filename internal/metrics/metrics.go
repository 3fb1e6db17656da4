// Package metrics builds the Prometheus registry and /metrics handler of each tide server (tide up, tide broker,
// tide adapter rocketmq). It is a leaf: the products register their own collectors on the registry the
// composition root hands them, and nothing is ever registered on client_golang's global default registry, so
// several servers in one process (tests) never share or collide on metrics.
package metrics

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry holding the Go runtime and process collectors (go_*, process_*).
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg in Prometheus' exposition formats (text, or protobuf/OpenMetrics when the scraper asks),
// gzip-compressed when accepted. A collector that fails is logged and left out of that scrape rather than failing
// it (ContinueOnError), at most 4 scrapes run at once, and one is cut off after 10 s.
func Handler(reg *prometheus.Registry, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(logger.With("component", "metrics").Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}
