package fooddelivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"k8s.io/utils/clock"
)

// ServiceOptions configure NewService.
type ServiceOptions struct {
	// Store receives the orders. Required.
	Store *Store
	// Work is the simulated work per order ("generating the order"), spent before it is stored, so that
	// concurrency matters and a meal peak needs several instances. Default 0.
	Work time.Duration
	// Instance names this process in stored rows, e.g. "<K_REVISION>/<host>/<pid>".
	Instance string
	// Clock times the simulated work. Default the real clock.
	Clock clock.Clock
	// Logger; default slog.Default(). The service adds component=order-service.
	Logger *slog.Logger
}

// Service is the order service's HTTP handler:
//
//	POST /             an order CloudEvent (binary or structured). 202 when stored or already stored (a duplicate);
//	                   400 when it is not a CloudEvent or not a valid order (not retried by Knative: dead-lettered);
//	                   503 when the store stayed busy (retried).
//	POST /dead-letter  the Trigger's dead-letter sink: records any CloudEvent, 202.
//	GET  /healthz      200 once the store is open.
//	GET  /stats        JSON counters of this instance: received, stored, duplicates, rejected, dead letters,
//	                   in flight, max in flight.
type Service struct {
	store    *Store
	work     time.Duration
	instance string
	clock    clock.Clock
	log      *slog.Logger
	mux      *http.ServeMux

	// Counters of this instance only; the store has the totals across instances.
	received, stored, duplicates, rejected, deadLetters, failed atomic.Int64
	inFlight, maxInFlight                                       atomic.Int64
}

// Stats are one instance's counters, served on GET /stats.
type Stats struct {
	Instance    string `json:"instance"`
	Received    int64  `json:"received"`
	Stored      int64  `json:"stored"`
	Duplicates  int64  `json:"duplicates"`
	Rejected    int64  `json:"rejected"`
	Failed      int64  `json:"failed"`
	DeadLetters int64  `json:"deadLetters"`
	InFlight    int64  `json:"inFlight"`
	MaxInFlight int64  `json:"maxInFlight"`
}

// NewService builds the handler.
func NewService(opts ServiceOptions) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("order service: ServiceOptions.Store is required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Service{store: opts.Store, work: opts.Work, instance: opts.Instance, clock: opts.Clock,
		log: opts.Logger.With("component", "order-service")}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", s.handleOrder)
	mux.HandleFunc("POST /dead-letter", s.handleDeadLetter)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.Stats())
	})
	s.mux = mux
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Stats returns this instance's counters.
func (s *Service) Stats() Stats {
	return Stats{Instance: s.instance, Received: s.received.Load(), Stored: s.stored.Load(),
		Duplicates: s.duplicates.Load(), Rejected: s.rejected.Load(), Failed: s.failed.Load(),
		DeadLetters: s.deadLetters.Load(), InFlight: s.inFlight.Load(), MaxInFlight: s.maxInFlight.Load()}
}

func (s *Service) handleOrder(w http.ResponseWriter, r *http.Request) {
	s.received.Add(1)
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for m := s.maxInFlight.Load(); n > m && !s.maxInFlight.CompareAndSwap(m, n); m = s.maxInFlight.Load() {
	}

	r.Body = http.MaxBytesReader(w, r.Body, MaxOrderBytes+4096)
	ev, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		s.reject(w, "", fmt.Errorf("not a CloudEvent: %w", err))
		return
	}
	if err := ev.Validate(); err != nil {
		s.reject(w, ev.ID(), fmt.Errorf("invalid CloudEvent: %w", err))
		return
	}
	order, err := ParseOrder(ev.Data())
	if err != nil {
		s.reject(w, ev.ID(), err)
		return
	}
	// Simulated work: the time it takes to "generate the order" (pricing, dispatch, ...).
	if s.work > 0 {
		select {
		case <-s.clock.After(s.work):
		case <-r.Context().Done():
			s.failed.Add(1)
			http.Error(w, "request cancelled", http.StatusServiceUnavailable)
			return
		}
	}
	inserted, err := s.store.SaveOrder(r.Context(), order, OrderMeta{
		EventID: ev.ID(), EventSource: ev.Source(), Born: ev.Time(), Instance: s.instance})
	if err != nil {
		// 503 is retried by Knative delivery: the order is not lost, it comes back.
		s.failed.Add(1)
		s.log.Warn("storing order failed; asking for redelivery", "orderId", order.OrderID, "err", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if inserted {
		s.stored.Add(1)
	} else {
		s.duplicates.Add(1)
		s.log.Debug("duplicate order ignored", "orderId", order.OrderID, "eventId", ev.ID())
	}
	w.WriteHeader(http.StatusAccepted)
}

// reject answers 400: Knative's delivery does not retry it and hands the event to the dead-letter sink.
func (s *Service) reject(w http.ResponseWriter, eventID string, err error) {
	s.rejected.Add(1)
	s.log.Info("order rejected", "eventId", eventID, "err", err)
	http.Error(w, err.Error(), http.StatusBadRequest)
}

func (s *Service) handleDeadLetter(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxOrderBytes+4096)
	ev, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil || ev.Validate() != nil {
		// Not a CloudEvent: a dead-letter sink has nothing to record; 400 so the sender knows.
		if err == nil {
			err = ev.Validate()
		}
		http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
		return
	}
	ext := ev.Extensions()
	str := func(k string) string {
		if v, ok := ext[k]; ok {
			return fmt.Sprint(v)
		}
		return ""
	}
	d := DeadLetter{EventID: ev.Source() + "#" + ev.ID(), OrderID: looseOrderID(ev.Data()),
		ErrorCode: str("knativeerrorcode"), ErrorDest: str("knativeerrordest"), ErrorData: str("knativeerrordata"),
		Data: ev.Data()}
	inserted, err := s.store.SaveDeadLetter(r.Context(), d)
	if err != nil {
		s.log.Warn("storing dead letter failed; asking for redelivery", "eventId", d.EventID, "err", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if inserted {
		s.deadLetters.Add(1)
		s.log.Info("dead letter recorded", "eventId", d.EventID, "orderId", d.OrderID, "code", d.ErrorCode)
	}
	w.WriteHeader(http.StatusAccepted)
}

// looseOrderID finds the orderId in data that may not be a valid order, so dead letters can be matched with the
// orders the simulator sent.
func looseOrderID(data []byte) string {
	var v struct {
		OrderID any `json:"orderId"`
	}
	if json.Unmarshal(data, &v) != nil || v.OrderID == nil {
		return ""
	}
	id := fmt.Sprint(v.OrderID)
	if len(id) > 64 {
		id = id[:64]
	}
	return id
}

// ListenAndServe serves the Service on addr until ctx ends, then drains in-flight requests for up to grace.
// ready, when not nil, receives the bound address once listening (useful with port 0).
func ListenAndServe(ctx context.Context, addr string, h http.Handler, grace time.Duration, ready func(addr string)) error {
	lc := net.ListenConfig{}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("order service: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("order service: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("order service: drain: %w", err)
	}
	return nil
}
