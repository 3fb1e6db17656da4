// Package metrics is the autoscaler's view of load: per-instance Stats (time-weighted average concurrency and
// requests per second over a reporting period), 1-second buckets summing every report that lands in the same
// second, and averages over a revision's stable and panic windows.
//
// Data flow: the data plane keeps one Reporter per instance (fed with request start/end events), and once a
// second hands each instance's Report to Collector.Record; the activator does the same for the requests it is
// holding. The decider reads StableAndPanicConcurrency / StableAndPanicRPS.
//
// Window averages follow Knative's linear aggregation exactly (knative.dev/serving pkg/autoscaler/aggregation):
// the divisor is the number of buckets between the first and the last write that are still in the window, so a
// second with no report between two reports counts as 0, a revision's first seconds are not diluted by a
// window it has not lived through yet, and data older than the window is forgotten. Consequently an idle
// instance must keep reporting zeros every second for the averages to fall; Reporter does that naturally.
//
// All methods take the time explicitly (decisions take `now`); nothing here reads the wall clock except the
// Reporter, through an injected k8s.io/utils/clock.
package metrics
