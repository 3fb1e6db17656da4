// Package scenario plays the food-delivery demo against a running platform and reports on it: it runs the order
// simulator into RocketMQ, samples the order service's instance count, waits until every sent order is stored or
// dead-lettered (or a deadline passes) and until the service is back to zero instances, then computes the summary
// and writes it with the effect chart.
//
// It knows nothing of tide's internals: the platform is reached through RocketMQ name servers, the order service's
// SQLite file, and a function that returns the current instance count. `tide demo food-delivery` starts tide,
// applies the bundle and calls Run; the same code runs against Knative on a cluster given those three things.
package scenario
