package rocketmqsource

import (
	"encoding/json"
	"errors"
	"fmt"
	"go.opentelemetry.io/otel/trace"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
	"github.com/tide-run/tide/eventing/delivery"
)

// ErrInvalidConfig is wrapped by configuration errors (New, ConfigFromSource, ConfigFromEnv).
var ErrInvalidConfig = errors.New("invalid RocketMQSource adapter configuration")

// Config is everything an Adapter needs, resolved: no references left to look up.
type Config struct {
	// SourceNamespace and SourceName identify the RocketMQSource (the event source attribute uses them).
	SourceNamespace, SourceName string
	// NameServers are host:port addresses; host names are resolved to IPs at Start (the client needs literal IPs).
	NameServers []string
	// Topics to consume.
	Topics []string
	// ConsumerGroup is the RocketMQ consumer group.
	ConsumerGroup string
	// Selector filters on the broker; the zero value means all tags.
	Selector v1alpha1.Selector
	// InitialOffset is earliest, latest (default) or an RFC 3339 time; it applies only to a group without offsets.
	InitialOffset string
	// Ordered selects ordered delivery (one message at a time per queue).
	Ordered bool
	// MaxInFlight bounds concurrent deliveries in unordered mode; default v1alpha1.DefaultMaxInFlight.
	MaxInFlight int
	// Namespace is the RocketMQ namespace.
	Namespace string
	// AccessKey and SecretKey are ACL credentials (empty: none).
	AccessKey, SecretKey string
	// Sink receives the events.
	Sink *url.URL
	// Delivery is the resolved delivery spec (retry, backoff, timeout, dead-letter sink).
	Delivery delivery.Spec
	// Overrides are the ceOverrides extensions.
	Overrides map[string]string
	// MaxReconsumeTimes is how often RocketMQ redelivers a failed message before moving it to %DLQ%<group>;
	// default 16 (RocketMQ's default). In ordered mode the retries happen in place, every OrderedRetryInterval.
	MaxReconsumeTimes int32
	// RetryDelayLevel is the delay level asked for when a message goes back to the retry topic; 0 lets the broker
	// choose (3 + reconsume times: 10 s, 30 s, 1 min, ...). Level 1 is 1 s, level 2 is 5 s.
	RetryDelayLevel int
	// OrderedRetryInterval is the pause before an ordered queue retries a failed message; default 1 s.
	OrderedRetryInterval time.Duration
	// Sender delivers events; default a new delivery.Sender. Share one across adapters to share connections.
	Sender *delivery.Sender
	// HTTPClient is used when Sender is nil; default delivery.NewClient().
	HTTPClient *http.Client
	// Logger receives the adapter's logs; default slog.Default().
	Logger *slog.Logger
	// TracerProvider records a consumer span per message (tracing.go); with a nil Sender the adapter's own
	// sender records its client spans with it too. Nil: no spans.
	TracerProvider trace.TracerProvider `json:"-"`
	// PullBatchSize is how many messages one pull fetches per queue; default 32.
	PullBatchSize int32
	// MessageTrace makes the adapter write RocketMQ message-trace records of its deliveries to RMQ_SYS_TRACE_TOPIC
	// on its RocketMQ (msgtrace.go), so `tide mq trace` shows them.
	MessageTrace bool
}

func (c *Config) validate() error {
	switch {
	case len(c.NameServers) == 0:
		return fmt.Errorf("%w: no name servers", ErrInvalidConfig)
	case len(c.Topics) == 0:
		return fmt.Errorf("%w: no topics", ErrInvalidConfig)
	case c.ConsumerGroup == "":
		return fmt.Errorf("%w: no consumer group", ErrInvalidConfig)
	case c.Sink == nil || c.Sink.Host == "":
		return fmt.Errorf("%w: no sink URL", ErrInvalidConfig)
	case c.MaxInFlight < 0:
		return fmt.Errorf("%w: maxInFlight %d < 0", ErrInvalidConfig, c.MaxInFlight)
	}
	if _, _, err := v1alpha1.ParseInitialOffset(c.InitialOffset); err != nil {
		return fmt.Errorf("%w: initialOffset: %w", ErrInvalidConfig, err)
	}
	return nil
}

// Credentials are resolved ACL credentials.
type Credentials struct {
	AccessKey, SecretKey string
}

// CredentialsFromAccessToken reads the 2020 form's accessToken Secret value, JSON
// {"url","accessKeyId","accessKeySecret"}.
func CredentialsFromAccessToken(secretValue []byte) (Credentials, error) {
	var lc v1alpha1.LegacyCredentials
	if err := json.Unmarshal(secretValue, &lc); err != nil {
		return Credentials{}, fmt.Errorf("%w: accessToken secret: expected JSON {\"url\",\"accessKeyId\",\"accessKeySecret\"}: %w", ErrInvalidConfig, err)
	}
	if lc.AccessKeyID == "" || lc.AccessKeySecret == "" {
		return Credentials{}, fmt.Errorf("%w: accessToken secret: accessKeyId and accessKeySecret are required", ErrInvalidConfig)
	}
	return Credentials{AccessKey: lc.AccessKeyID, SecretKey: lc.AccessKeySecret}, nil
}

// ConfigFromSource builds a Config from a defaulted, valid RocketMQSource whose references the caller resolved:
// the sink URL, the dead-letter sink URL (nil: none) and the credentials the secret refs point at.
func ConfigFromSource(src *v1alpha1.RocketMQSource, sink, deadLetter *url.URL, creds Credentials) (Config, error) {
	spec := &src.Spec
	ds, err := delivery.FromDeliverySpec(spec.Delivery, deadLetter)
	if err != nil {
		return Config{}, fmt.Errorf("%w: spec.delivery: %w", ErrInvalidConfig, err)
	}
	c := Config{
		SourceNamespace: src.Namespace,
		SourceName:      src.Name,
		NameServers:     append([]string(nil), spec.NameServers...),
		Topics:          spec.AllTopics(),
		ConsumerGroup:   spec.ConsumerGroup,
		InitialOffset:   spec.InitialOffset,
		Ordered:         spec.Ordering == v1alpha1.Ordered,
		Namespace:       spec.Namespace,
		AccessKey:       creds.AccessKey,
		SecretKey:       creds.SecretKey,
		Sink:            sink,
		Delivery:        ds,
	}
	if c.ConsumerGroup == "" {
		c.ConsumerGroup = v1alpha1.DefaultConsumerGroup(src.Namespace, src.Name)
	}
	if spec.Selector != nil {
		c.Selector = *spec.Selector
	}
	if spec.MaxInFlight != nil {
		c.MaxInFlight = int(*spec.MaxInFlight)
	}
	if o := spec.CloudEventOverrides; o != nil && len(o.Extensions) > 0 {
		c.Overrides = make(map[string]string, len(o.Extensions))
		for k, v := range o.Extensions {
			c.Overrides[k] = v
		}
	}
	return c, c.validate()
}
