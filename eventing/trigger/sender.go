package trigger

import (
	"context"
	"net/url"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// These mirror eventing/delivery's Spec, Result and Outcome field for field
// until that package is on main; then they become aliases (type DeliverySpec
// = delivery.Spec, ...) and *delivery.Sender satisfies Sender as is.

// DeliverySpec is a resolved delivery configuration.
type DeliverySpec struct {
	Retry         int32
	BackoffPolicy string
	BackoffDelay  time.Duration
	Timeout       time.Duration
	DeadLetter    *url.URL
	Format        string
	PreferReply   bool
}

// Outcome is how a Send ended.
type Outcome int

// Outcomes.
const (
	Failed Outcome = iota
	Delivered
	DeadLettered
)

// DeliveryResult describes one Send.
type DeliveryResult struct {
	Outcome    Outcome
	Reply      *event.Event
	StatusCode int
	Attempts   int
	Err        error
}

// Sender delivers one event with retries and dead-lettering.
type Sender interface {
	Send(ctx context.Context, target *url.URL, ev event.Event, spec DeliverySpec) DeliveryResult
}
