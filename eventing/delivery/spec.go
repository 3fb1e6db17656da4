package delivery

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/rickb777/date/period"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
)

// ErrInvalidSpec is wrapped by every error FromDeliverySpec returns for a spec it cannot use.
var ErrInvalidSpec = errors.New("invalid delivery spec")

// BackoffPolicy selects how the wait between retries grows.
type BackoffPolicy string

const (
	// BackoffExponential waits delay x 2^n after failed attempt n (n counted from 0). The default.
	BackoffExponential BackoffPolicy = "exponential"
	// BackoffLinear waits delay x n after failed attempt n (n counted from 0), as knative/eventing does.
	BackoffLinear BackoffPolicy = "linear"
)

// Format selects the HTTP binding mode of the CloudEvent.
type Format string

const (
	// FormatBinary puts attributes in ce- headers and the data in the body. The default.
	FormatBinary Format = "binary"
	// FormatJSON sends the structured JSON event format (application/cloudevents+json).
	FormatJSON Format = "json"
)

// Spec is a resolved delivery configuration: everything Send needs, with durations parsed and the dead-letter sink
// resolved to a URL. The zero value means one attempt, no dead-letter sink, binary mode, no per-attempt timeout.
type Spec struct {
	// Retry is the number of retries after the first attempt (so Retry+1 attempts in all).
	Retry int32
	// BackoffPolicy is linear or exponential; empty means exponential.
	BackoffPolicy BackoffPolicy
	// BackoffDelay is the base delay of the backoff; zero retries immediately.
	BackoffDelay time.Duration
	// Timeout bounds each attempt (connect, send, response headers and body); zero means no per-attempt limit.
	Timeout time.Duration
	// DeadLetter receives the event after the last failed attempt; nil means none.
	DeadLetter *url.URL
	// Format is binary or json; empty means binary.
	Format Format
	// PreferReply adds the `Prefer: reply` header, as Knative brokers and channels do when they can use a reply.
	PreferReply bool
}

// FromDeliverySpec converts a Knative DeliverySpec into a Spec. The dead-letter sink is passed already resolved
// (resolving a Destination's ref needs the control plane); nil means none. A nil ds gives the zero Spec with
// the dead-letter URL set. Durations are ISO 8601 periods, as in Knative ("PT0.5S").
func FromDeliverySpec(ds *eventingduckv1.DeliverySpec, resolvedDLS *url.URL) (Spec, error) {
	s := Spec{DeadLetter: resolvedDLS, BackoffPolicy: BackoffExponential, Format: FormatBinary}
	if ds == nil {
		return s, nil
	}
	if ds.Retry != nil {
		if *ds.Retry < 0 {
			return Spec{}, fmt.Errorf("%w: retry: must be >= 0, got %d", ErrInvalidSpec, *ds.Retry)
		}
		s.Retry = *ds.Retry
	}
	if ds.BackoffPolicy != nil {
		switch *ds.BackoffPolicy {
		case eventingduckv1.BackoffPolicyLinear:
			s.BackoffPolicy = BackoffLinear
		case eventingduckv1.BackoffPolicyExponential:
			s.BackoffPolicy = BackoffExponential
		default:
			return Spec{}, fmt.Errorf("%w: backoffPolicy: expected linear or exponential, got %q", ErrInvalidSpec, *ds.BackoffPolicy)
		}
	}
	if ds.BackoffDelay != nil {
		d, err := ParseDuration(*ds.BackoffDelay)
		if err != nil {
			return Spec{}, fmt.Errorf("%w: backoffDelay: %w", ErrInvalidSpec, err)
		}
		s.BackoffDelay = d
	}
	if ds.Timeout != nil {
		d, err := ParseDuration(*ds.Timeout)
		if err != nil {
			return Spec{}, fmt.Errorf("%w: timeout: %w", ErrInvalidSpec, err)
		}
		s.Timeout = d
	}
	if ds.Format != nil {
		switch *ds.Format {
		case eventingduckv1.DeliveryFormatBinary:
			s.Format = FormatBinary
		case eventingduckv1.DeliveryFormatJson:
			s.Format = FormatJSON
		default:
			return Spec{}, fmt.Errorf("%w: format: expected binary or json, got %q", ErrInvalidSpec, *ds.Format)
		}
	}
	return s, nil
}

// ParseDuration parses an ISO 8601 duration ("PT1S", "PT0.5S", "P1D") the way Knative does, rejecting negatives.
func ParseDuration(s string) (time.Duration, error) {
	p, err := period.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("expected an ISO 8601 duration such as PT1S, got %q: %w", s, err)
	}
	d, _ := p.Duration()
	if d < 0 {
		return 0, fmt.Errorf("expected a non-negative duration, got %q", s)
	}
	return d, nil
}

// backoff returns the wait after failed attempt n (counted from 0), per the package doc.
func (s Spec) backoff(n int) time.Duration {
	if s.BackoffDelay <= 0 {
		return 0
	}
	if s.BackoffPolicy == BackoffLinear {
		return s.BackoffDelay * time.Duration(n)
	}
	if n > 30 { // cap the shift: 2^30 x any positive delay is already longer than anyone waits
		n = 30
	}
	return s.BackoffDelay << uint(n)
}
