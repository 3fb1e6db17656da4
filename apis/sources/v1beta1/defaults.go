package v1beta1

import (
	"context"

	"knative.dev/pkg/apis"
)

// SetDefaults applies Knative's defaults: one consumer, initialOffset latest, ordering ordered, and the sink's and
// delivery's own defaults (a sink ref's namespace). The consumer group is not written here: an empty one means
// DefaultConsumerGroup(metadata.uid), resolved by the reconciler, because the uid is not known before the object is
// stored.
func (k *KafkaSource) SetDefaults(ctx context.Context) {
	ctx = apis.WithinParent(ctx, k.ObjectMeta)
	if k.Spec.Consumers == nil {
		one := int32(1)
		k.Spec.Consumers = &one
	}
	if k.Spec.InitialOffset == "" {
		k.Spec.InitialOffset = OffsetLatest
	}
	if k.Spec.Ordering == nil {
		o := Ordered
		k.Spec.Ordering = &o
	}
	k.Spec.Sink.SetDefaults(ctx)
	if k.Spec.Delivery != nil {
		k.Spec.Delivery.SetDefaults(ctx)
	}
}
