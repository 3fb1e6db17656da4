package server

import (
	"log/slog"
	"os"
	"path/filepath"

	"k8s.io/utils/clock"
)

// Defaults for Options; see DefaultOptions.
const (
	DefaultHost           = "127.0.0.1"
	DefaultAPIPort        = 8090
	DefaultGatewayPort    = 8080
	DefaultNameServerPort = 9876
	DefaultBrokerPort     = 10911
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
}

// DefaultOptions returns the documented defaults, with DataDir from $TIDE_DATA_DIR when set.
func DefaultOptions() Options {
	o := Options{Host: DefaultHost, APIPort: DefaultAPIPort, GatewayPort: DefaultGatewayPort,
		NameServerPort: DefaultNameServerPort, BrokerPort: DefaultBrokerPort, DataDir: DefaultDataDir}
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
