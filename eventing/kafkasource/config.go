package kafkasource

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tide-run/tide/apis/sources/v1beta1"
	"github.com/tide-run/tide/eventing/delivery"
)

// ErrInvalidConfig is wrapped by configuration errors (New, ConfigFromSource).
var ErrInvalidConfig = errors.New("invalid KafkaSource adapter configuration")

// Config is everything an Adapter needs, resolved: no references left to look up.
type Config struct {
	// SourceNamespace and SourceName identify the KafkaSource (the event source attribute uses them).
	SourceNamespace, SourceName string
	// BootstrapServers are host:port addresses of brokers.
	BootstrapServers []string
	// Topics to consume.
	Topics []string
	// ConsumerGroup is the Kafka consumer group ID.
	ConsumerGroup string
	// InitialOffset is earliest or latest (default): where partitions without committed offsets start. It is
	// committed for every partition when the adapter starts (Knative's InitialOffsetsCommitted), so records
	// produced after that are never skipped, whenever the consumer joins.
	InitialOffset v1beta1.Offset
	// Ordered delivers one record at a time per partition; otherwise up to MaxInFlight records of a poll at once.
	Ordered bool
	// MaxInFlight bounds concurrent deliveries (unordered); default 32.
	MaxInFlight int
	// KeyType is the key-type label's value (string, int, float, byte-array); default string.
	KeyType string
	// SASL, when Mechanism is set, authenticates with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	SASL SASL
	// TLS, when non-nil, connects with TLS.
	TLS *tls.Config `json:"-"`
	// TLSFingerprint identifies the TLS material (hash of the Secret values) so a change restarts the adapter.
	TLSFingerprint string
	// Sink receives the events.
	Sink *url.URL
	// Delivery is the resolved delivery spec (retry, backoff, timeout, dead-letter sink).
	Delivery delivery.Spec
	// Overrides are the ceOverrides extensions.
	Overrides map[string]string
	// RetryPause is the wait before a record that neither the sink nor the dead-letter sink accepted is tried
	// again in place; default 1 s.
	RetryPause time.Duration
	// Sender delivers events; default a new delivery.Sender. Share one across adapters to share connections.
	Sender *delivery.Sender `json:"-"`
	// Logger receives the adapter's logs; default slog.Default().
	Logger *slog.Logger `json:"-"`
	// TracerProvider records a consumer span per record; nil: none.
	TracerProvider trace.TracerProvider `json:"-"`
}

// SASL credentials.
type SASL struct {
	Mechanism      string
	User, Password string
}

func (c *Config) validate() error {
	switch {
	case len(c.BootstrapServers) == 0:
		return fmt.Errorf("%w: no bootstrap servers", ErrInvalidConfig)
	case len(c.Topics) == 0:
		return fmt.Errorf("%w: no topics", ErrInvalidConfig)
	case c.ConsumerGroup == "":
		return fmt.Errorf("%w: no consumer group", ErrInvalidConfig)
	case c.Sink == nil || c.Sink.Host == "":
		return fmt.Errorf("%w: no sink URL", ErrInvalidConfig)
	case c.MaxInFlight < 0:
		return fmt.Errorf("%w: maxInFlight %d < 0", ErrInvalidConfig, c.MaxInFlight)
	}
	switch c.InitialOffset {
	case "", v1beta1.OffsetEarliest, v1beta1.OffsetLatest:
	default:
		return fmt.Errorf("%w: initialOffset %q: must be earliest or latest", ErrInvalidConfig, c.InitialOffset)
	}
	switch c.SASL.Mechanism {
	case "", v1beta1.SASLPlain, v1beta1.SASLScramSHA256, v1beta1.SASLScramSHA512:
	default:
		return fmt.Errorf("%w: SASL type %q: must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", ErrInvalidConfig, c.SASL.Mechanism)
	}
	switch c.KeyType {
	case "", "string", "int", "float", "byte-array":
	default:
		return fmt.Errorf("%w: key type %q: must be string, int, float or byte-array", ErrInvalidConfig, c.KeyType)
	}
	return nil
}

// Secrets are the resolved values of net.sasl and net.tls's Secret references (nil: not set).
type Secrets struct {
	SASLUser, SASLPassword, SASLType []byte
	TLSCert, TLSKey, TLSCACert       []byte
}

// KeyTypeLabel is Knative's label choosing how record keys are read.
const KeyTypeLabel = "kafkasources.sources.knative.dev/key-type"

// ConfigFromSource builds a Config from a defaulted, valid KafkaSource whose references the caller resolved: the
// sink URL, the dead-letter sink URL (nil: none) and the Secret values net.sasl/net.tls point at.
func ConfigFromSource(src *v1beta1.KafkaSource, sink, deadLetter *url.URL, sec Secrets) (Config, error) {
	spec := &src.Spec
	ds, err := delivery.FromDeliverySpec(spec.Delivery, deadLetter)
	if err != nil {
		return Config{}, fmt.Errorf("%w: spec.delivery: %w", ErrInvalidConfig, err)
	}
	c := Config{
		SourceNamespace: src.Namespace,
		SourceName:      src.Name,
		Topics:          append([]string(nil), spec.Topics...),
		ConsumerGroup:   spec.ConsumerGroup,
		InitialOffset:   spec.InitialOffset,
		Ordered:         spec.Ordering == nil || *spec.Ordering == v1beta1.Ordered,
		KeyType:         src.Labels[KeyTypeLabel],
		Sink:            sink,
		Delivery:        ds,
	}
	for _, b := range spec.BootstrapServers {
		for _, one := range strings.Split(b, ",") {
			if one = strings.TrimSpace(one); one != "" {
				c.BootstrapServers = append(c.BootstrapServers, one)
			}
		}
	}
	if c.ConsumerGroup == "" {
		c.ConsumerGroup = v1beta1.DefaultConsumerGroup(string(src.UID))
	}
	if spec.Net.SASL.Enable {
		c.SASL = SASL{Mechanism: strings.TrimSpace(string(sec.SASLType)), User: strings.TrimSpace(string(sec.SASLUser)),
			Password: strings.TrimSpace(string(sec.SASLPassword))}
		if c.SASL.Mechanism == "" {
			c.SASL.Mechanism = v1beta1.SASLPlain
		}
	}
	if spec.Net.TLS.Enable {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if len(sec.TLSCACert) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(sec.TLSCACert) {
				return Config{}, fmt.Errorf("%w: spec.net.tls.caCert: no PEM certificate in the Secret value", ErrInvalidConfig)
			}
			tc.RootCAs = pool
		}
		if len(sec.TLSCert) > 0 || len(sec.TLSKey) > 0 {
			cert, err := tls.X509KeyPair(sec.TLSCert, sec.TLSKey)
			if err != nil {
				return Config{}, fmt.Errorf("%w: spec.net.tls.cert/key: %w", ErrInvalidConfig, err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		c.TLS = tc
		c.TLSFingerprint = fingerprintOf(sec.TLSCert, sec.TLSKey, sec.TLSCACert)
	}
	if o := spec.CloudEventOverrides; o != nil && len(o.Extensions) > 0 {
		c.Overrides = make(map[string]string, len(o.Extensions))
		for k, v := range o.Extensions {
			c.Overrides[k] = v
		}
	}
	return c, c.validate()
}
