package barrage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/tide-run/tide/demo/fooddelivery/simulator"
)

// Publisher is the HomePage's side of the queue: it publishes one comment message and returns once the queue has
// stored it. Implementations must be safe for concurrent use. RocketMQPublisher is the default; another queue
// (Kafka, as the seed uses: KafkaPublisher) is chosen by BARRAGE_QUEUE.
type Publisher interface {
	Publish(ctx context.Context, m Message) error
	Close() error
}

// Message is a comment on the wire: the JSON body, its key (the comment id) and its W3C traceparent, which queues
// carry as a message property/header named "traceparent".
type Message struct {
	Key         string
	Body        []byte
	TraceParent string
}

// Queue settings from the environment.
const (
	// EnvQueue selects the queue: "rocketmq" (default) or "kafka" (KAFKA_SERVER, kafka.go).
	EnvQueue = "BARRAGE_QUEUE"
	// EnvNameServer is the RocketMQ name server list (host:port, ';'-separated); default 127.0.0.1:9876, tide's.
	EnvNameServer = "ROCKETMQ_NAMESRV"
	// EnvTopic is the topic; default the seed's KAFKA_TOPIC, else DefaultTopic.
	EnvTopic       = "ROCKETMQ_TOPIC"
	EnvKafkaTopic  = "KAFKA_TOPIC"
	DefaultTopic   = "barrage-info"
	DefaultNameSrv = "127.0.0.1:9876"
	// TraceProperty is the message property carrying the traceparent.
	TraceProperty = "traceparent"
)

// ErrQueueConfig is wrapped by errors in the queue settings.
var ErrQueueConfig = errors.New("barrage queue configuration")

// TopicFromEnv is the topic comments go to.
func TopicFromEnv(getenv func(string) string) string {
	for _, k := range []string{EnvTopic, EnvKafkaTopic} {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
	}
	return DefaultTopic
}

// PublisherFromEnv builds the publisher BARRAGE_QUEUE names.
func PublisherFromEnv(ctx context.Context, getenv func(string) string) (Publisher, error) {
	switch q := getenv(EnvQueue); q {
	case "", "rocketmq":
		ns := getenv(EnvNameServer)
		if ns == "" {
			ns = DefaultNameSrv
		}
		return NewRocketMQPublisher(ctx, RocketMQOptions{NameServers: strings.Split(ns, ";"), Topic: TopicFromEnv(getenv)})
	case "kafka":
		return kafkaPublisherFromEnv(getenv)
	default:
		return nil, fmt.Errorf("%w: %s=%q: rocketmq (default) or kafka", ErrQueueConfig, EnvQueue, q)
	}
}

// RocketMQOptions configure NewRocketMQPublisher.
type RocketMQOptions struct {
	NameServers []string
	Topic       string
	// Group is the producer group; default "barrage-homepage".
	Group string
}

// RocketMQPublisher publishes with the official RocketMQ Go client (synchronous sends: Publish returns once the
// broker stored the message).
type RocketMQPublisher struct {
	p     rocketmq.Producer
	topic string
}

// NewRocketMQPublisher starts a producer.
func NewRocketMQPublisher(ctx context.Context, opts RocketMQOptions) (*RocketMQPublisher, error) {
	if opts.Topic == "" {
		return nil, fmt.Errorf("%w: a topic is required", ErrQueueConfig)
	}
	addrs, err := simulator.ResolveNameServers(ctx, opts.NameServers)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQueueConfig, err)
	}
	if opts.Group == "" {
		opts.Group = "barrage-homepage"
	}
	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver(addrs)),
		producer.WithGroupName(opts.Group),
		producer.WithInstanceName(fmt.Sprintf("%s-%d", opts.Group, time.Now().UnixNano())),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(3*time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("barrage: new producer: %w", err)
	}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("barrage: start producer (name servers %s): %w", strings.Join(addrs, ";"), err)
	}
	return &RocketMQPublisher{p: p, topic: opts.Topic}, nil
}

// Publish sends m synchronously; an error means the broker did not confirm it.
func (r *RocketMQPublisher) Publish(ctx context.Context, m Message) error {
	msg := primitive.NewMessage(r.topic, m.Body)
	if m.Key != "" {
		msg.WithKeys([]string{m.Key})
	}
	if m.TraceParent != "" {
		msg.WithProperty(TraceProperty, m.TraceParent)
	}
	res, err := r.p.SendSync(ctx, msg)
	if err != nil {
		return fmt.Errorf("barrage: publish to %s: %w", r.topic, err)
	}
	if res.Status != primitive.SendOK {
		return fmt.Errorf("barrage: publish to %s: broker status %d", r.topic, res.Status)
	}
	return nil
}

// Close shuts the producer down.
func (r *RocketMQPublisher) Close() error { return r.p.Shutdown() }
