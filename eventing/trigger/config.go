package trigger

import (
	"fmt"
	"net/url"

	duckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"

	"github.com/tide-run/tide/eventing/delivery"
)

// Resolved is what the control plane resolves before a Trigger can run.
type Resolved struct {
	// Topic of the Trigger's Broker (spec.broker).
	Topic string
	// Subscriber is spec.subscriber resolved to a URL (status.subscriberUri).
	Subscriber *url.URL
	// DeadLetter is the resolved deadLetterSink of the effective delivery
	// spec (the Trigger's, else the Broker's); nil when none.
	DeadLetter *url.URL
	// BrokerDelivery is the Broker's spec.delivery, the default for its
	// Triggers; nil when none.
	BrokerDelivery *duckv1.DeliverySpec
}

// ConfigFromTrigger builds the Config for Manager.Upsert from a Trigger object
// and what the control plane resolved. Errors wrap ErrInvalidConfig and name
// the field (spec.delivery.backoffDelay, metadata.annotations[...], ...).
func ConfigFromTrigger(tr *eventingv1.Trigger, r Resolved) (Config, error) {
	ordered, err := OrderedFromAnnotations(tr.Annotations)
	if err != nil {
		return Config{}, err
	}
	ds, field := tr.Spec.Delivery, "spec.delivery"
	if ds == nil {
		ds, field = r.BrokerDelivery, "broker spec.delivery"
	}
	spec, err := delivery.FromDeliverySpec(ds, r.DeadLetter)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, field, err)
	}
	cfg := Config{
		Namespace:  tr.Namespace,
		Name:       tr.Name,
		UID:        string(tr.UID),
		Broker:     tr.Spec.Broker,
		Topic:      r.Topic,
		Filter:     tr.Spec.Filter,
		Filters:    tr.Spec.Filters,
		Subscriber: r.Subscriber,
		Delivery:   spec,
		Ordered:    ordered,
	}
	return cfg, cfg.validate()
}
