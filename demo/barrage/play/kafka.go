package play

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ensureKafkaTopic creates topic with the given partitions on the Kafka at servers (host:port,...), unless it
// exists; the KafkaSource reports TopicNotFound until it does.
func ensureKafkaTopic(ctx context.Context, servers, topic string, partitions int32, progress io.Writer) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(servers, ",")...), kgo.RetryTimeout(20*time.Second))
	if err != nil {
		return fmt.Errorf("%w: --kafka %s: %w", ErrOptions, servers, err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		fmt.Fprintf(progress, "created Kafka topic %s (%d partitions) at %s\n", topic, partitions, servers)
	case errors.Is(err, kerr.TopicAlreadyExists):
		fmt.Fprintf(progress, "Kafka topic %s exists at %s\n", topic, servers)
	default:
		return fmt.Errorf("barrage demo: creating Kafka topic %s at %s (is Kafka running there?): %w", topic, servers, err)
	}
	return nil
}
