package barrage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// Kafka settings from the environment: the seed's own variable names.
const (
	// EnvKafkaServer is the bootstrap servers, host:port comma-separated (the seed's KAFKA_SERVER).
	EnvKafkaServer = "KAFKA_SERVER"
	// EnvKafkaUser and EnvKafkaPassword, when both set, authenticate with SASL PLAIN (the seed's KAFKA_USER and
	// KAFKA_PWD).
	EnvKafkaUser     = "KAFKA_USER"
	EnvKafkaPassword = "KAFKA_PWD"
)

// KafkaOptions configure NewKafkaPublisher.
type KafkaOptions struct {
	Servers        []string
	Topic          string
	User, Password string // SASL PLAIN when User is set
}

// KafkaPublisher publishes with franz-go: Publish returns once every in-sync replica stored the record (acks=all,
// idempotent producer), the record keyed by the comment id and carrying the traceparent header.
type KafkaPublisher struct {
	cl    *kgo.Client
	topic string
}

// NewKafkaPublisher starts a producer client; an unreachable cluster is reported by Publish, not here.
func NewKafkaPublisher(opts KafkaOptions) (*KafkaPublisher, error) {
	if opts.Topic == "" || len(opts.Servers) == 0 {
		return nil, fmt.Errorf("%w: Kafka needs %s and a topic", ErrQueueConfig, EnvKafkaServer)
	}
	kopts := []kgo.Opt{kgo.SeedBrokers(opts.Servers...), kgo.DefaultProduceTopic(opts.Topic), kgo.ClientID("barrage-homepage"),
		kgo.ProducerLinger(0), kgo.RecordDeliveryTimeout(10 * time.Second)}
	if opts.User != "" {
		kopts = append(kopts, kgo.SASL(plain.Auth{User: opts.User, Pass: opts.Password}.AsMechanism()))
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQueueConfig, err)
	}
	// Connect now (best effort: Kafka may come up later), so the first comments do not wait for the connection
	// and metadata, as the RocketMQ producer's Start does.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = cl.Ping(ctx)
	cancel()
	return &KafkaPublisher{cl: cl, topic: opts.Topic}, nil
}

// Publish produces m synchronously; an error means Kafka did not confirm it.
func (k *KafkaPublisher) Publish(ctx context.Context, m Message) error {
	r := &kgo.Record{Value: m.Body, Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}}}
	if m.Key != "" {
		r.Key = []byte(m.Key)
	}
	if m.TraceParent != "" {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: TraceProperty, Value: []byte(m.TraceParent)})
	}
	if err := k.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		return fmt.Errorf("barrage: publish to Kafka topic %s: %w", k.topic, err)
	}
	return nil
}

// Close flushes and closes the client.
func (k *KafkaPublisher) Close() error {
	k.cl.Close()
	return nil
}

func kafkaPublisherFromEnv(getenv func(string) string) (Publisher, error) {
	var servers []string
	for _, s := range strings.Split(getenv(EnvKafkaServer), ",") {
		if s = strings.TrimSpace(s); s != "" {
			servers = append(servers, s)
		}
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("%w: %s=kafka needs %s (host:port,...)", ErrQueueConfig, EnvQueue, EnvKafkaServer)
	}
	return NewKafkaPublisher(KafkaOptions{Servers: servers, Topic: TopicFromEnv(getenv),
		User: strings.TrimSpace(getenv(EnvKafkaUser)), Password: getenv(EnvKafkaPassword)})
}
