package v1alpha1

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	"knative.dev/pkg/apis"
)

type nameServersKey struct{}

// WithDefaultNameServers returns a context whose SetDefaults fills an empty spec.nameServers with addrs: the
// platform's own name server (tide up injects its embedded broker's address).
func WithDefaultNameServers(ctx context.Context, addrs []string) context.Context {
	return context.WithValue(ctx, nameServersKey{}, slices.Clone(addrs))
}

// DefaultNameServers returns the name servers injected with WithDefaultNameServers, or nil.
func DefaultNameServers(ctx context.Context) []string {
	v, _ := ctx.Value(nameServersKey{}).([]string)
	return v
}

// maxGroupLen is RocketMQ's limit on consumer group names.
const maxGroupLen = 255

// DefaultConsumerGroup derives a consumer group from namespace and name. It is stable (same inputs, same group, so a
// recreated source resumes from its committed offsets) and injective: '_' cannot occur in Kubernetes names, so it
// separates the parts, and '.' (allowed in names, not in RocketMQ groups) becomes '|'. Over-long results are cut and
// suffixed with a hash of the full form.
func DefaultConsumerGroup(namespace, name string) string {
	if namespace == "" {
		namespace = "default"
	}
	g := "knative-rocketmqsource_" + namespace + "_" + strings.ReplaceAll(name, ".", "|")
	if len(g) > maxGroupLen {
		sum := sha256.Sum256([]byte(g))
		g = g[:maxGroupLen-17] + "_" + hex.EncodeToString(sum[:8])
	}
	return g
}

// SetDefaults fills unset fields; see each field's documentation for its default.
func (s *RocketMQSource) SetDefaults(ctx context.Context) {
	ctx = apis.WithinParent(ctx, s.ObjectMeta)
	s.Spec.SetDefaults(ctx)
	if s.Spec.ConsumerGroup == "" && s.Name != "" {
		s.Spec.ConsumerGroup = DefaultConsumerGroup(s.Namespace, s.Name)
	}
}

// SetDefaults fills unset fields of the spec (all but consumerGroup, which needs the object's name).
func (s *RocketMQSourceSpec) SetDefaults(ctx context.Context) {
	if len(s.NameServers) == 0 {
		s.NameServers = DefaultNameServers(ctx)
	}
	if s.Selector == nil {
		s.Selector = &Selector{}
	}
	if s.Selector.Type == "" {
		s.Selector.Type = SelectorTag
	}
	if s.Selector.Type == SelectorTag && strings.TrimSpace(s.Selector.Expression) == "" {
		s.Selector.Expression = "*"
	}
	if s.InitialOffset == "" {
		s.InitialOffset = OffsetLatest
	}
	if s.Ordering == "" {
		s.Ordering = Unordered
	}
	if s.Ordering == Unordered && s.MaxInFlight == nil {
		v := DefaultMaxInFlight
		s.MaxInFlight = &v
	}
	s.Sink.SetDefaults(ctx)
	if s.Delivery != nil && s.Delivery.DeadLetterSink != nil {
		s.Delivery.DeadLetterSink.SetDefaults(ctx)
	}
}
