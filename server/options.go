package server

import (
	"log/slog"
	"os"
	"path/filepath"

	"k8s.io/utils/clock"

	"github.com/tide-run/tide/internal/tracing"
)

// Defaults for Options; see DefaultOptions.
const (
	DefaultHost           = "127.0.0.1"
	DefaultAPIPort        = 8090
	DefaultGatewayPort    = 8080
	DefaultNameServerPort = 9876
	DefaultBrokerPort     = 10911
	DefaultGRPCPort       = 8081
	DefaultDataDir        = "./.tide"
	// DataDirEnv overrides DefaultDataDir.
	DataDirEnv = "TIDE_DATA_DIR"
)

// Options configures the platform. Port 0 picks a free port (tests); the bound address is in Endpoints.
type Options struct {
	// Host is the listen address of every endpoint. Default 127.0.0.1.
	Host string
	// APIPort serves the control-plane API, /readyz and the dashboard. Default 8090 (flag --api-port).
	APIPort int
	// GatewayPort serves Knative Services and Broker ingress. Default 8080 (flag --gateway-port).
	GatewayPort int
	// NameServerPort is the embedded RocketMQ name server. Default 9876 (flag --namesrv-port).
	NameServerPort int
	// BrokerPort is the embedded RocketMQ broker. Default 10911 (flag --broker-port).
	BrokerPort int
	// GRPCPort is the embedded RocketMQ's gRPC endpoint for RocketMQ 5 clients (TLS and plaintext). Default 8081
	// (flag --grpc-port); -1: none.
	GRPCPort int
	// RocketMQNameServers, when set, points eventing at an external Apache RocketMQ cluster's name servers
	// ("host:port"; flag --rocketmq-name-servers) and the embedded broker is not started.
	RocketMQNameServers []string
	// DataDir holds all state (the object store is DataDir/store.db). Default ./.tide, or $TIDE_DATA_DIR.
	DataDir string
	// Logger; default slog.Default(). Components add their own component attribute.
	Logger *slog.Logger
	// Clock drives reconcilers' timestamps. Default: the real clock.
	Clock clock.WithTicker
	// Serving tunes the serving runtime (see ServingOptions).
	Serving ServingOptions
	// Eventing tunes the eventing runtime (tests shorten intervals); zero values are the defaults.
	Eventing EventingOptions
	// ACLFile turns on RocketMQ ACL on the embedded broker (flag --acl; plain_acl.yml format, docs/security.md).
	// tide's own eventing clients then use an internal admin account generated at every start (see mqacl.go).
	ACLFile string

	// Who may call the API and dashboard (server/access.go, docs/security.md). The API token lives in
	// DataDir/api-token (created on the first start). It is required when Host is not a loopback address, or
	// with RequireToken; otherwise callers without it are served, but not Secrets' values.

	// RequireToken requires the API token on loopback too (flag --require-token).
	RequireToken bool
	// InsecureNoAuth serves the API without the token on a non-loopback Host (flag --insecure-no-auth), and lets
	// the embedded broker listen there without ACLFile: anyone who can reach the ports controls tide. Warned at
	// every start.
	InsecureNoAuth bool
	// AllowedHosts are host names the API answers to besides loopback names, *.localhost and Host (flag
	// --allowed-host), e.g. the machine's DNS name when Host is 0.0.0.0.
	AllowedHosts []string
	// CORSOrigins may call the API from a browser page (flag --cors-origin), e.g. "https://tools.example.com".
	CORSOrigins []string
	// Tracing is the platform's OpenTelemetry tracing (internal/tracing); nil builds it from the OTEL_* environment
	// (docs/observability.md#traces). Tests pass their own to read its store or add an exporter.
	Tracing *tracing.Tracing

	// TLSCertFile and TLSKeyFile, when both set, serve the API and dashboard over HTTPS with that certificate
	// (flags --tls-cert-file, --tls-key-file). kubectl and client-go send a kubeconfig's token only over HTTPS.
	TLSCertFile, TLSKeyFile string
}

// DefaultOptions returns the documented defaults, with DataDir from $TIDE_DATA_DIR when set.
func DefaultOptions() Options {
	o := Options{Host: DefaultHost, APIPort: DefaultAPIPort, GatewayPort: DefaultGatewayPort,
		NameServerPort: DefaultNameServerPort, BrokerPort: DefaultBrokerPort, GRPCPort: DefaultGRPCPort, DataDir: DefaultDataDir}
	if d := os.Getenv(DataDirEnv); d != "" {
		o.DataDir = d
	}
	return o
}

func (o *Options) fill() {
	if o.Host == "" {
		o.Host = DefaultHost
	}
	if o.DataDir == "" {
		o.DataDir = DefaultOptions().DataDir
	}
	// Every path under the data dir is resolved against its absolute form: subsystems run tools in other
	// directories (go build runs in the source folder), where a relative data dir would mean somewhere else.
	if abs, err := filepath.Abs(o.DataDir); err == nil {
		o.DataDir = abs
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
}
