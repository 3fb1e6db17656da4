package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/utils/clock"

	"github.com/tide-run/tide/controlplane/reconciler"
	"github.com/tide-run/tide/controlplane/store"
	"github.com/tide-run/tide/eventing/bus"
	"github.com/tide-run/tide/eventing/delivery"
	"github.com/tide-run/tide/eventing/ingress"
	"github.com/tide-run/tide/eventing/rocketmqsource"
	"github.com/tide-run/tide/eventing/trigger"
	"github.com/tide-run/tide/mq/admin"
)

// GroupKinds the runtime reads and reconciles.
const (
	GKBroker  = "Broker.eventing.knative.dev"
	GKTrigger = "Trigger.eventing.knative.dev"
	GKSource  = "RocketMQSource.sources.knative.dev"
	GKService = "Service.serving.knative.dev"
	GKSecret  = "Secret"
)

// ErrNotStarted is returned by operations that need the data plane before Start.
var ErrNotStarted = errors.New("eventing runtime not started")

// Options configure a Runtime.
type Options struct {
	// Store is the control-plane object store. Required.
	Store *store.Store
	// NameServers returns the platform's RocketMQ name servers (the embedded broker's address once it listens, or
	// the external cluster's). Called at Start and when a RocketMQSource names none. Required.
	NameServers func() []string
	// GatewayURL returns the gateway's base URL ("http://127.0.0.1:8080") once it listens; Broker addresses are
	// GatewayURL()/<namespace>/<broker>. Required.
	GatewayURL func() string
	// Clock for timestamps and the stats resync; default the real clock.
	Clock clock.WithTicker
	// Logger; default slog.Default(). component=eventing is added.
	Logger *slog.Logger
	// StatsInterval is how often changed delivery counters are written to status. Default 2s.
	StatsInterval time.Duration
	// MaxReconsumeTimes and OrderedRetryPause are passed to the trigger manager (tests shorten them).
	MaxReconsumeTimes int32
	OrderedRetryPause time.Duration
	// SourceRetryDelayLevel is the RocketMQ delay level of a RocketMQSource message that goes back to RocketMQ
	// (0: the broker's default schedule).
	SourceRetryDelayLevel int
	// EmbeddedBroker says NameServers is tide's own embedded broker, which nothing else shares; only then does
	// Start delete groups and topics left by Triggers, Brokers and tails that ended while tide was not running
	// (see sweep.go). Leave it false for an external RocketMQ cluster.
	EmbeddedBroker bool
	// Credentials sign the runtime's own RocketMQ requests (the bus's producer and consumers, group and topic
	// deletion, the orphan sweep) for a broker with ACL; they need an admin account. Empty: unsigned.
	// RocketMQSources use the credentials of their own spec, never these.
	Credentials admin.Credentials
	// TracerProvider records the data plane's spans (ingress, Triggers, sources, deliveries); nil: none. The
	// composition root passes its server's provider (internal/tracing).
	TracerProvider trace.TracerProvider
	// BusClient picks the RocketMQ client of the data plane's bus (the ingress's producer and the Triggers'
	// consumers): BusNative (tide's own remoting client, eventing/bus/native.go) or BusOfficial (rocketmq-client-go);
	// "" is DefaultBusClient. RocketMQSources always use the official client.
	BusClient string
}

// Bus clients (Options.BusClient).
const (
	BusNative   = "native"
	BusOfficial = "official"
	// DefaultBusClient is the bus client used when Options.BusClient is empty: the native bus, 1.3-1.9x the
	// official client's events/s on the Trigger path at 25-30% less CPU per event (docs/BENCHMARKS.md).
	DefaultBusClient = BusNative
)

var quietClientLog sync.Once

// Runtime is the eventing subsystem. See the package doc for its invariants.
type Runtime struct {
	opts   Options
	log    *slog.Logger
	st     *store.Store
	recons *reconciler.Manager
	status reconciler.StatusWriter

	// Set by Start (under mu) and never cleared; reconcilers read them without mu because the server runs
	// reconcilers only after every subsystem's Start returned and stops them before any Shutdown.
	bus     bus.Bus
	ingress *ingress.Ingress
	mgr     *trigger.Manager
	sender  *delivery.Sender
	stop    chan struct{}
	done    chan struct{}

	// mu guards the fields below.
	mu      sync.Mutex
	brokers map[string]string         // "ns/name" -> topic, for Brokers whose topic exists
	orphans map[string]string         // "ns/name" -> topic of a deleted Broker whose topic deletion failed (retried)
	sources map[string]*runningSource // "ns/name" -> the adapter running for a RocketMQSource
	// kafkaSources: "ns/name" -> the adapter running for a KafkaSource (kafkasource.go)
	kafkaSources map[string]*runningKafkaSource
	written      map[string]string // "kind ns/name" -> stats JSON last written to status
	started      bool
	metrics      *runtimeMetrics // RegisterMetrics' (metrics.go); nil: none
}

type runningSource struct {
	adapter     *rocketmqsource.Adapter
	fingerprint string
}

// New returns a Runtime; nothing connects until Start.
func New(opts Options) (*Runtime, error) {
	if opts.Store == nil || opts.NameServers == nil || opts.GatewayURL == nil {
		return nil, errors.New("eventingrt: Store, NameServers and GatewayURL are required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StatsInterval <= 0 {
		opts.StatsInterval = 2 * time.Second
	}
	// The RocketMQ client logs process-wide through logrus at info level; quiet it once (CONTRIBUTING).
	quietClientLog.Do(func() { rlog.SetLogLevel("error") })
	return &Runtime{opts: opts, log: opts.Logger.With("component", "eventing"), st: opts.Store,
		status:  reconciler.StatusWriter{Store: opts.Store, Clock: opts.Clock},
		brokers: map[string]string{}, orphans: map[string]string{}, sources: map[string]*runningSource{}, written: map[string]string{},
		kafkaSources: map[string]*runningKafkaSource{}}, nil
}

// Name implements the server's Subsystem.
func (r *Runtime) Name() string { return "eventing" }

// Start connects the producer to the platform's RocketMQ and builds the ingress and the trigger manager. On the
// embedded broker (Options.EmbeddedBroker) it first deletes the groups and topics left by Triggers, Brokers and
// tails that ended while tide was not running (sweep.go); a failed sweep is logged and does not fail Start.
func (r *Runtime) Start(ctx context.Context) error {
	ns := r.opts.NameServers()
	// DeleteGroup: the official client cannot delete consumer groups, so deleted Triggers and ended tails use
	// tide's remoting client (207 to every master broker; works against Apache RocketMQ too).
	creds := r.opts.Credentials
	deleteGroup := func(ctx context.Context, nameServers []string, group string) error {
		return admin.DeleteGroup(admin.WithCredentials(ctx, creds), nameServers, group)
	}
	busClient := r.opts.BusClient
	if busClient == "" {
		busClient = DefaultBusClient
	}
	if busClient != BusNative && busClient != BusOfficial {
		return fmt.Errorf("eventing: bus client %q: want %q or %q", busClient, BusNative, BusOfficial)
	}
	b, err := bus.Open(bus.RocketMQOptions{NameServers: ns, Logger: r.opts.Logger, DeleteGroup: deleteGroup, MessageTrace: true,
		AccessKey: creds.AccessKey, SecretKey: creds.SecretKey, Native: busClient == BusNative})
	if err != nil {
		return fmt.Errorf("eventing: %w", err)
	}
	ing, err := ingress.New(ingress.Options{Bus: b, Brokers: ingress.BrokersFunc(r.lookupBroker), Clock: r.opts.Clock, Logger: r.opts.Logger,
		TracerProvider: r.opts.TracerProvider})
	if err != nil {
		_ = b.Close()
		return err
	}
	reqMetrics, dispatchMetrics := r.metricsOf()
	ing.SetRequestMetrics(reqMetrics)
	tr := delivery.NewTransport()
	tr.DialContext = r.dialLocalhost(tr.DialContext)
	client := &http.Client{Transport: &localTransport{base: tr, r: r}}
	sender := delivery.New(delivery.Options{Client: client, Logger: r.opts.Logger, TracerProvider: r.opts.TracerProvider})
	mgr, err := trigger.NewManager(trigger.Options{Bus: b, Sender: sender, Publisher: ing, Logger: r.opts.Logger,
		TracerProvider:    r.opts.TracerProvider,
		MaxReconsumeTimes: r.opts.MaxReconsumeTimes, OrderedRetryPause: r.opts.OrderedRetryPause, Clock: r.opts.Clock,
		Metrics: dispatchMetrics})
	if err != nil {
		_ = b.Close()
		return err
	}
	if r.opts.EmbeddedBroker {
		r.sweepOrphans(ctx, ns)
	}
	r.mu.Lock()
	r.bus, r.ingress, r.mgr, r.sender = b, ing, mgr, sender
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	r.started = true
	r.mu.Unlock()
	go r.resyncStats()
	r.log.Info("eventing ready", "nameServers", ns)
	return nil
}

// Ready implements the server's Subsystem: nil once Start succeeded.
func (r *Runtime) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return ErrNotStarted
	}
	return nil
}

// Shutdown stops every RocketMQSource and KafkaSource adapter and Trigger consumer (offsets are persisted; unfinished deliveries
// are redelivered after a restart), then the producer.
func (r *Runtime) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if !r.started {
		r.mu.Unlock()
		return nil
	}
	r.started = false
	sources := r.sources
	r.sources = map[string]*runningSource{}
	kafkaSources := r.kafkaSources
	r.kafkaSources = map[string]*runningKafkaSource{}
	stop, done := r.stop, r.done
	r.mu.Unlock()
	close(stop)
	<-done
	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	for key, rs := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rs.adapter.Stop(ctx); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("rocketmqsource %s: %w", key, err))
				emu.Unlock()
			}
		}()
	}
	for key, rs := range kafkaSources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rs.adapter.Stop(ctx); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("kafkasource %s: %w", key, err))
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := r.mgr.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := r.bus.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Ingress is the Broker ingress handler for the gateway (paths /<namespace>/<broker>).
func (r *Runtime) Ingress() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		ing := r.ingress
		r.mu.Unlock()
		if ing == nil {
			http.Error(w, "eventing is not running", http.StatusServiceUnavailable)
			return
		}
		ing.ServeHTTP(w, req)
	})
}

// GatewayFallback is the handler for gateway requests whose Host names no Knative Service. A Broker address uses
// the gateway's own host (an IP, "localhost" or a bare machine name: http://127.0.0.1:8080/<ns>/<broker>), so such
// requests go to the ingress; a Host in one of Knative's Service forms (<name>.<ns>.localhost, <name>.<ns>.svc...,
// any dotted name) is a Service that does not exist (or is not routable yet) and gets 404, not an ingress answer.
func (r *Runtime) GatewayFallback() http.Handler {
	ing := r.Ingress()
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		host := req.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if host == "" || net.ParseIP(host) != nil || strings.EqualFold(host, "localhost") || !strings.Contains(host, ".") {
			ing.ServeHTTP(w, req)
			return
		}
		http.Error(w, "no Knative Service serves host "+req.Host, http.StatusNotFound)
	})
}

// lookupBroker backs the ingress. A Broker the reconciler set up (its topic exists) is answered from memory, the
// hot path of every event; otherwise the store decides between "not ours / not there" (404) and "exists but its
// topic is not ready yet" (503); a Broker being deleted is "not there". The reconciler removes a Broker from memory when it is deleted or changes class.
func (r *Runtime) lookupBroker(namespace, name string) (ingress.Broker, bool) {
	if topic, ok := r.brokerTopic(namespace, name); ok {
		return ingress.Broker{Topic: topic, Ready: true}, true
	}
	obj, err := r.st.Get(GKBroker, namespace, name)
	if err != nil || !ourClass(obj.GetAnnotations()[BrokerClassAnnotation]) || obj.GetDeletionTimestamp() != nil {
		return ingress.Broker{}, false
	}
	return ingress.Broker{}, true
}

func (r *Runtime) brokerTopic(namespace, name string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.brokers[namespace+"/"+name]
	return t, ok
}

// defaultNameServers is what a RocketMQSource without spec.nameServers uses.
func (r *Runtime) defaultNameServers() []string { return r.opts.NameServers() }
