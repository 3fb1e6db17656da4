package barrage

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestPublisherFromEnvKafka: BARRAGE_QUEUE=kafka takes the seed's KAFKA_SERVER and KAFKA_TOPIC (Publish itself runs
// against the real Apache Kafka in `server`'s and eventing/kafkasource's tests; here only the choice and the errors).
func TestPublisherFromEnvKafka(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	p, err := PublisherFromEnv(context.Background(), env(map[string]string{"BARRAGE_QUEUE": "kafka",
		"KAFKA_SERVER": "127.0.0.1:1, 127.0.0.1:2", "KAFKA_TOPIC": "barrage-info"}))
	if err != nil {
		t.Fatal(err)
	}
	kp, ok := p.(*KafkaPublisher)
	if !ok || kp.topic != "barrage-info" {
		t.Fatalf("publisher %T %+v", p, p)
	}
	_ = p.Close()
	_, err = PublisherFromEnv(context.Background(), env(map[string]string{"BARRAGE_QUEUE": "kafka"}))
	if !errors.Is(err, ErrQueueConfig) || !strings.Contains(err.Error(), "KAFKA_SERVER") {
		t.Fatalf("no KAFKA_SERVER: %v", err)
	}
	_, err = PublisherFromEnv(context.Background(), env(map[string]string{"BARRAGE_QUEUE": "nats"}))
	if !errors.Is(err, ErrQueueConfig) || !strings.Contains(err.Error(), "kafka") {
		t.Fatalf("unknown queue: %v", err)
	}
}
