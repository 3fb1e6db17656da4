// Package ratelog keeps repeated log lines from flooding a log: a slog.Handler wrapper that lets the first record of
// a kind through at once and, while the same kind keeps coming, writes one summary line per interval carrying the
// number of records it held back ("suppressed") and the attributes of the latest one.
//
// A kind is the record's level and message plus the attributes and groups the logger was given with With /
// WithGroup (for example component=mq.broker), so "closing connection: bad frame" from one component is counted
// apart from another component's. Per-record attributes (a remote address, an error) do not split a kind: that is
// what makes a flood of bad peers one line.
//
// Invariants: per kind, at most one record is written immediately per interval and at most one summary at the end
// of each interval in which records were held back; no count is lost (a held-back record is reported by a summary
// no later than one interval after it arrived). Time comes from an injected clock (k8s.io/utils/clock), so tests
// drive it with a fake clock. This package imports nothing of tide.
package ratelog
