// Package server is tide's composition root: it turns Options (the `tide up` flags) into a running platform. It
// opens the store in the data dir, builds the kind registry, the control-plane API and the reconcilers, starts
// every Subsystem (the embedded RocketMQ name server and broker, the eventing data plane and the serving gateway
// plug in here as they land) in order, reports readiness on GET /readyz, and shuts everything down in reverse order.
//
// It is the only package that wires subsystems together.
package server
