package trigger

import (
	"context"
	"net/url"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/tide-run/tide/eventing/delivery"
)

// The delivery engine is eventing/delivery; these aliases keep the trigger
// package's vocabulary short and let tests script results.
type (
	// DeliverySpec is a resolved spec.delivery (delivery.FromDeliverySpec).
	DeliverySpec = delivery.Spec
	// DeliveryResult is how one Send ended.
	DeliveryResult = delivery.Result
	// Outcome is Delivered, DeadLettered or Failed.
	Outcome = delivery.Outcome
)

// Outcomes.
const (
	Failed       = delivery.Failed
	Delivered    = delivery.Delivered
	DeadLettered = delivery.DeadLettered
)

// Sender delivers one event with retries and dead-lettering;
// *delivery.Sender implements it.
type Sender interface {
	Send(ctx context.Context, target *url.URL, ev event.Event, spec DeliverySpec) DeliveryResult
}

var _ Sender = (*delivery.Sender)(nil)
