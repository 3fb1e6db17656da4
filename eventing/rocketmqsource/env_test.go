package rocketmqsource

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
	"github.com/tide-run/tide/eventing/delivery"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigFromEnv(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(map[string]string{
		"K_SINK":                           "http://127.0.0.1:8080/default/default",
		"K_CE_OVERRIDES":                   `{"extensions":{"team":"checkout"}}`,
		"ROCKETMQ_NAME_SERVERS":            "10.0.0.1:9876;10.0.0.2:9876",
		"ROCKETMQ_TOPICS":                  "orders, refunds",
		"ROCKETMQ_SOURCE_NAMESPACE":        "shop",
		"ROCKETMQ_SOURCE_NAME":             "orders",
		"ROCKETMQ_SELECTOR_TYPE":           "tag",
		"ROCKETMQ_SELECTOR_EXPRESSION":     "paid || refunded",
		"ROCKETMQ_INITIAL_OFFSET":          "earliest",
		"ROCKETMQ_MAX_IN_FLIGHT":           "64",
		"ROCKETMQ_DELIVERY_RETRY":          "3",
		"ROCKETMQ_DELIVERY_BACKOFF_POLICY": "linear",
		"ROCKETMQ_DELIVERY_BACKOFF_DELAY":  "PT0.1S",
		"ROCKETMQ_DELIVERY_TIMEOUT":        "PT5S",
		"ROCKETMQ_DEAD_LETTER_SINK":        "http://127.0.0.1:9999/dead",
		"ROCKETMQ_RETRY_DELAY_LEVEL":       "1",
		"ROCKETMQ_MESSAGE_TRACE":           "true",
		"ROCKETMQ_ACCESS_KEY":              "ak",
		"ROCKETMQ_SECRET_KEY":              "sk",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.NameServers) != 2 || len(cfg.Topics) != 2 || cfg.Topics[1] != "refunds" || cfg.ConsumerGroup != "knative-rocketmqsource_shop_orders" ||
		cfg.Selector.Type != v1alpha1.SelectorTag || cfg.Selector.Expression != "paid || refunded" || cfg.InitialOffset != "earliest" ||
		cfg.MaxInFlight != 64 || cfg.Ordered || cfg.Overrides["team"] != "checkout" || cfg.AccessKey != "ak" || cfg.RetryDelayLevel != 1 ||
		!cfg.MessageTrace {
		t.Errorf("%+v", cfg)
	}
	want := delivery.Spec{Retry: 3, BackoffPolicy: delivery.BackoffLinear, BackoffDelay: 100 * time.Millisecond, Timeout: 5 * time.Second, Format: delivery.FormatBinary}
	if cfg.Delivery.DeadLetter == nil || cfg.Delivery.DeadLetter.String() != "http://127.0.0.1:9999/dead" {
		t.Errorf("dead letter %v", cfg.Delivery.DeadLetter)
	}
	cfg.Delivery.DeadLetter = nil
	if cfg.Delivery != want {
		t.Errorf("delivery %+v", cfg.Delivery)
	}

	// Minimal: only K_SINK and a topic; the name server defaults to tide up's.
	cfg, err = ConfigFromEnv(envOf(map[string]string{"K_SINK": "http://127.0.0.1:1/", "ROCKETMQ_TOPIC": "t"}))
	if err != nil || cfg.NameServers[0] != DefaultNameServer || cfg.MaxInFlight != int(v1alpha1.DefaultMaxInFlight) || cfg.MessageTrace ||
		cfg.ConsumerGroup != "knative-rocketmqsource_default_rocketmq-t" {
		t.Fatalf("%+v %v", cfg, err)
	}
}

func TestConfigFromEnvErrorsNameVariables(t *testing.T) {
	base := map[string]string{"K_SINK": "http://127.0.0.1:1/", "ROCKETMQ_TOPIC": "t"}
	cases := map[string][2]string{
		"K_SINK":                          {"K_SINK", ""},
		"ROCKETMQ_TOPIC":                  {"ROCKETMQ_TOPIC", "bad topic"},
		"ROCKETMQ_ORDERING":               {"ROCKETMQ_ORDERING", "sorted"},
		"ROCKETMQ_MAX_IN_FLIGHT":          {"ROCKETMQ_MAX_IN_FLIGHT", "lots"},
		"ROCKETMQ_INITIAL_OFFSET":         {"ROCKETMQ_INITIAL_OFFSET", "yesterday"},
		"K_CE_OVERRIDES":                  {"K_CE_OVERRIDES", `{"extension":{}}`},
		"ROCKETMQ_NAME_SERVERS":           {"ROCKETMQ_NAME_SERVERS", "nohostport"},
		"ROCKETMQ_DELIVERY_BACKOFF_DELAY": {"ROCKETMQ_DELIVERY_BACKOFF_DELAY", "1s"},
		"ROCKETMQ_ACCESS_KEY":             {"ROCKETMQ_ACCESS_KEY", "only-one"},
		"ROCKETMQ_MESSAGE_TRACE":          {"ROCKETMQ_MESSAGE_TRACE", "sometimes"},
	}
	for name, kv := range cases {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		env[kv[0]] = kv[1]
		_, err := ConfigFromEnv(envOf(env))
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: %v", kv[0], kv[1], err)
		}
	}
}

// TestKCACerts: a sink with a certificate from a private CA is reachable when K_CA_CERTS holds that CA, and not
// without it.
func TestKCACerts(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(202) }))
	defer srv.Close()
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	u, _ := url.Parse(srv.URL)
	env := map[string]string{"K_SINK": srv.URL, "ROCKETMQ_TOPIC": "t", "K_CA_CERTS": string(pemCert)}
	cfg, err := ConfigFromEnv(envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	ev := cloudevents.NewEvent()
	ev.SetID("1")
	ev.SetSource("/s")
	ev.SetType("t")
	if r := delivery.New(delivery.Options{Client: cfg.HTTPClient}).Send(context.Background(), u, ev, delivery.Spec{}); r.Outcome != delivery.Delivered {
		t.Fatalf("with K_CA_CERTS: %v", r.Err)
	}
	if r := delivery.New(delivery.Options{}).Send(context.Background(), u, ev, delivery.Spec{}); r.Outcome == delivery.Delivered {
		t.Fatal("delivered without trusting the CA")
	}
	env["K_CA_CERTS"] = "not pem"
	if _, err := ConfigFromEnv(envOf(env)); err == nil || !strings.Contains(err.Error(), "K_CA_CERTS") {
		t.Fatalf("bad PEM: %v", err)
	}
}
