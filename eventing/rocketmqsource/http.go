package rocketmqsource

import (
	"fmt"
	"net/http"
)

// Handler serves an adapter's health and counters: GET /healthz answers 200 "ok" while the consumer runs and 503
// with the reason otherwise (for Kubernetes probes); GET /metrics is the Prometheus text format. current returns
// the adapter to report on (nil: none yet, reported as not deployed), so a caller that replaces its adapter (the
// standalone command retrying start-up) keeps one handler.
func Handler(current func() *Adapter) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		a := current()
		if a == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		if st := a.Status(); !st.Deployed {
			http.Error(w, st.Reason+": "+st.Message, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		var c Counters
		deployed := 0
		if a := current(); a != nil {
			c = a.Counters()
			if a.Status().Deployed {
				deployed = 1
			}
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		fmt.Fprintf(w, "# HELP tide_rocketmqsource_messages_total Messages by outcome (a retried or abandoned message is received again).\n")
		fmt.Fprintf(w, "# TYPE tide_rocketmqsource_messages_total counter\n")
		for _, o := range []struct {
			name string
			n    int64
		}{{"delivered", c.Delivered}, {"dead_lettered", c.DeadLettered}, {"retried", c.Retried}, {"abandoned", c.Abandoned}} {
			fmt.Fprintf(w, "tide_rocketmqsource_messages_total{outcome=%q} %d\n", o.name, o.n)
		}
		fmt.Fprintf(w, "# HELP tide_rocketmqsource_in_flight Deliveries under way.\n# TYPE tide_rocketmqsource_in_flight gauge\ntide_rocketmqsource_in_flight %d\n", c.InFlight)
		fmt.Fprintf(w, "# HELP tide_rocketmqsource_deployed 1 while the consumer runs.\n# TYPE tide_rocketmqsource_deployed gauge\ntide_rocketmqsource_deployed %d\n", deployed)
	})
	return mux
}
