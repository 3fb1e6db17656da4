package rocketmqsource

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"k8s.io/utils/ptr"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
	"github.com/tide-run/tide/eventing/delivery"
)

// DefaultNameServer is the name server a standalone adapter uses when ROCKETMQ_NAME_SERVERS is unset: the one
// `tide up` runs.
const DefaultNameServer = "127.0.0.1:9876"

// EnvVars lists the environment variables ConfigFromEnv reads, each with the RocketMQSource field it stands for
// (docs/rocketmqsource.md has the full table).
var EnvVars = []struct{ Name, Field string }{
	{"K_SINK", "status.sinkUri (resolved spec.sink)"},
	{"K_CE_OVERRIDES", "spec.ceOverrides"},
	{"K_CA_CERTS", "CA certificates (PEM) trusted for the sink"},
	{"ROCKETMQ_SOURCE_NAMESPACE", "metadata.namespace"},
	{"ROCKETMQ_SOURCE_NAME", "metadata.name"},
	{"ROCKETMQ_NAME_SERVERS", "spec.nameServers"},
	{"ROCKETMQ_TOPIC", "spec.topic"},
	{"ROCKETMQ_TOPICS", "spec.topics"},
	{"ROCKETMQ_CONSUMER_GROUP", "spec.consumerGroup"},
	{"ROCKETMQ_SELECTOR_TYPE", "spec.selector.type"},
	{"ROCKETMQ_SELECTOR_EXPRESSION", "spec.selector.expression"},
	{"ROCKETMQ_INITIAL_OFFSET", "spec.initialOffset"},
	{"ROCKETMQ_ORDERING", "spec.ordering"},
	{"ROCKETMQ_MAX_IN_FLIGHT", "spec.maxInFlight"},
	{"ROCKETMQ_NAMESPACE", "spec.namespace"},
	{"ROCKETMQ_ACCESS_KEY", "spec.accessKey"},
	{"ROCKETMQ_SECRET_KEY", "spec.secretKey"},
	{"ROCKETMQ_ACCESS_TOKEN", "spec.accessToken (2020 form: JSON {\"url\",\"accessKeyId\",\"accessKeySecret\"})"},
	{"ROCKETMQ_DELIVERY_RETRY", "spec.delivery.retry"},
	{"ROCKETMQ_DELIVERY_BACKOFF_POLICY", "spec.delivery.backoffPolicy"},
	{"ROCKETMQ_DELIVERY_BACKOFF_DELAY", "spec.delivery.backoffDelay"},
	{"ROCKETMQ_DELIVERY_TIMEOUT", "spec.delivery.timeout"},
	{"ROCKETMQ_DELIVERY_FORMAT", "spec.delivery.format"},
	{"ROCKETMQ_DEAD_LETTER_SINK", "spec.delivery.deadLetterSink.uri"},
	{"ROCKETMQ_MAX_RECONSUME_TIMES", "deliveries from RocketMQ before %DLQ% (default 16)"},
	{"ROCKETMQ_RETRY_DELAY_LEVEL", "RocketMQ delay level for redelivery (default: broker's choice)"},
	{"ROCKETMQ_MESSAGE_TRACE", "true: write RocketMQ message-trace records of the deliveries to RMQ_SYS_TRACE_TOPIC (default false)"},
	{"ROCKETMQ_ADAPTER_HTTP_ADDR", "host:port serving /healthz and /metrics (tide adapter rocketmq; default: none)"},
}

// ConfigFromEnv builds a Config from environment variables (see EnvVars), the way a Knative ContainerSource
// configures its adapter. getenv is os.Getenv in production. The variables are assembled into a RocketMQSource,
// defaulted and validated like one, and errors name the variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var errs []string
	bad := func(name, format string, args ...any) { errs = append(errs, name+": "+fmt.Sprintf(format, args...)) }

	src := &v1alpha1.RocketMQSource{}
	src.Namespace = orDefault(getenv("ROCKETMQ_SOURCE_NAMESPACE"), "default")
	spec := &src.Spec
	spec.NameServers = splitList(getenv("ROCKETMQ_NAME_SERVERS"))
	spec.Topic = strings.TrimSpace(getenv("ROCKETMQ_TOPIC"))
	spec.Topics = splitList(getenv("ROCKETMQ_TOPICS"))
	// Without a name, name the source after its topics: the default consumer group derives from the name, and two
	// adapters for different topics must not share a group (members of a group must subscribe alike).
	src.Name = orDefault(getenv("ROCKETMQ_SOURCE_NAME"), "rocketmq-"+strings.Join(spec.AllTopics(), "-"))
	spec.ConsumerGroup = strings.TrimSpace(getenv("ROCKETMQ_CONSUMER_GROUP"))
	if t, e := getenv("ROCKETMQ_SELECTOR_TYPE"), getenv("ROCKETMQ_SELECTOR_EXPRESSION"); t != "" || e != "" {
		spec.Selector = &v1alpha1.Selector{Type: v1alpha1.SelectorType(strings.ToUpper(strings.TrimSpace(t))), Expression: e}
	}
	spec.InitialOffset = strings.TrimSpace(getenv("ROCKETMQ_INITIAL_OFFSET"))
	spec.Ordering = v1alpha1.Ordering(strings.ToLower(strings.TrimSpace(getenv("ROCKETMQ_ORDERING"))))
	if v := getenv("ROCKETMQ_MAX_IN_FLIGHT"); v != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil {
			bad("ROCKETMQ_MAX_IN_FLIGHT", "expected an integer, got %q", v)
		}
		spec.MaxInFlight = ptr.To(int32(n))
	}
	spec.Namespace = strings.TrimSpace(getenv("ROCKETMQ_NAMESPACE"))

	ds := &eventingduckv1.DeliverySpec{}
	if v := getenv("ROCKETMQ_DELIVERY_RETRY"); v != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil {
			bad("ROCKETMQ_DELIVERY_RETRY", "expected an integer, got %q", v)
		}
		ds.Retry = ptr.To(int32(n))
	}
	if v := getenv("ROCKETMQ_DELIVERY_BACKOFF_POLICY"); v != "" {
		ds.BackoffPolicy = ptr.To(eventingduckv1.BackoffPolicyType(strings.ToLower(strings.TrimSpace(v))))
	}
	if v := getenv("ROCKETMQ_DELIVERY_BACKOFF_DELAY"); v != "" {
		ds.BackoffDelay = ptr.To(strings.TrimSpace(v))
	}
	if v := getenv("ROCKETMQ_DELIVERY_TIMEOUT"); v != "" {
		ds.Timeout = ptr.To(strings.TrimSpace(v))
	}
	if v := getenv("ROCKETMQ_DELIVERY_FORMAT"); v != "" {
		ds.Format = ptr.To(eventingduckv1.FormatType(strings.ToLower(strings.TrimSpace(v))))
	}
	var dls *url.URL
	if v := strings.TrimSpace(getenv("ROCKETMQ_DEAD_LETTER_SINK")); v != "" {
		u, err := apis.ParseURL(v)
		if err != nil || u.Host == "" {
			bad("ROCKETMQ_DEAD_LETTER_SINK", "expected an absolute URL, got %q", v)
		} else {
			ds.DeadLetterSink = &duckv1.Destination{URI: u}
			dls = u.URL()
		}
	}
	if *ds != (eventingduckv1.DeliverySpec{}) {
		spec.Delivery = ds
	}

	sinkStr := strings.TrimSpace(getenv("K_SINK"))
	var sink *url.URL
	if sinkStr == "" {
		bad("K_SINK", "required: the URL events are delivered to")
	} else if u, err := apis.ParseURL(sinkStr); err != nil || u.Host == "" {
		bad("K_SINK", "expected an absolute URL, got %q", sinkStr)
	} else {
		spec.Sink = duckv1.Destination{URI: u}
		sink = u.URL()
	}
	if v := strings.TrimSpace(getenv("K_CE_OVERRIDES")); v != "" {
		var o duckv1.CloudEventOverrides
		dec := json.NewDecoder(strings.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			bad("K_CE_OVERRIDES", `expected JSON {"extensions":{"name":"value"}}: %v`, err)
		} else {
			spec.CloudEventOverrides = &o
		}
	}

	ak, sk := getenv("ROCKETMQ_ACCESS_KEY"), getenv("ROCKETMQ_SECRET_KEY")
	if (ak == "") != (sk == "") {
		bad("ROCKETMQ_ACCESS_KEY/ROCKETMQ_SECRET_KEY", "set both or neither")
	}
	if tok := getenv("ROCKETMQ_ACCESS_TOKEN"); tok != "" {
		if ak != "" {
			bad("ROCKETMQ_ACCESS_TOKEN", "set it or ROCKETMQ_ACCESS_KEY/ROCKETMQ_SECRET_KEY, not both")
		} else if c, err := CredentialsFromAccessToken([]byte(tok)); err != nil {
			bad("ROCKETMQ_ACCESS_TOKEN", "%v", err)
		} else {
			ak, sk = c.AccessKey, c.SecretKey
		}
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("%w from the environment: %s", ErrInvalidConfig, strings.Join(errs, "; "))
	}

	src.SetDefaults(v1alpha1.WithDefaultNameServers(context.Background(), []string{DefaultNameServer}))
	if ferr := src.Validate(context.Background()); ferr != nil {
		return Config{}, fmt.Errorf("%w from the environment: %s", ErrInvalidConfig, envNames(ferr.Error()))
	}
	cfg, err := ConfigFromSource(src, sink, dls, Credentials{AccessKey: ak, SecretKey: sk})
	if err != nil {
		return Config{}, err
	}

	if v := getenv("ROCKETMQ_MAX_RECONSUME_TIMES"); v != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || n < 1 {
			return Config{}, fmt.Errorf("%w from the environment: ROCKETMQ_MAX_RECONSUME_TIMES: expected a positive integer, got %q", ErrInvalidConfig, v)
		}
		cfg.MaxReconsumeTimes = int32(n)
	}
	if v := getenv("ROCKETMQ_RETRY_DELAY_LEVEL"); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > 18 {
			return Config{}, fmt.Errorf("%w from the environment: ROCKETMQ_RETRY_DELAY_LEVEL: expected 0..18, got %q", ErrInvalidConfig, v)
		}
		cfg.RetryDelayLevel = n
	}
	if v := getenv("ROCKETMQ_MESSAGE_TRACE"); v != "" {
		on, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return Config{}, fmt.Errorf("%w from the environment: ROCKETMQ_MESSAGE_TRACE: expected true or false, got %q", ErrInvalidConfig, v)
		}
		cfg.MessageTrace = on
	}
	if pem := getenv("K_CA_CERTS"); pem != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(pem)) {
			return Config{}, fmt.Errorf("%w from the environment: K_CA_CERTS: no PEM certificate found", ErrInvalidConfig)
		}
		client := delivery.NewClient()
		client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		cfg.HTTPClient = client
	}
	return cfg, nil
}

// envNames rewrites spec field paths in a validation message to the variables that set them.
func envNames(msg string) string {
	// Longest paths first, so spec.topics is not rewritten as spec.topic + "s".
	pairs := make([]string, 0, 2*len(EnvVars))
	for i := len(EnvVars) - 1; i >= 0; i-- {
		v := EnvVars[i]
		if strings.HasPrefix(v.Field, "spec.") || strings.HasPrefix(v.Field, "metadata.") {
			pairs = append(pairs, v.Field, v.Name+" ("+v.Field+")")
		}
	}
	return strings.NewReplacer(pairs...).Replace(msg)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func orDefault(s, def string) string {
	if s = strings.TrimSpace(s); s != "" {
		return s
	}
	return def
}
