package contract

import "errors"

// Extension attributes the Broker manages.
const (
	// ArrivalTimeExtension is when the event entered the Broker (RFC 3339), stamped by the ingress.
	ArrivalTimeExtension = "knativearrivaltime"
	// TTLExtension counts down the hops an event may still make through Brokers (replies re-enter); the ingress
	// refuses an event whose TTL reached 0, which ends reply loops. Subscribers never see it.
	TTLExtension = "knativebrokerttl"
)

// Errors of storing an event into a Broker (the ingress's Publish, which Triggers use for replies).
var (
	ErrInvalidEvent = errors.New("invalid event")       // 400
	ErrTTLExpired   = errors.New("event TTL exhausted") // 400
)
