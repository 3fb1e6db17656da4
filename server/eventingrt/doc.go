// Package eventingrt is the eventing runtime inside `tide up`: it turns the eventing libraries (eventing/bus,
// eventing/ingress, eventing/trigger, eventing/rocketmqsource) into a platform driven by the control plane.
//
// It holds the reconcilers of Broker, Trigger and RocketMQSource (both forms), the in-process route from a sink
// URL on the gateway to the Broker ingress, and the API endpoint `tide events tail` streams from. It lives under
// server because it is composition-root glue: it is the one place that needs both the control-plane store and the
// eventing data plane (eventing/... may not import the store; the control plane may not import eventing).
//
// Invariants: the Runtime's bus, ingress and trigger manager exist between Start and Shutdown; reconcilers run
// only in that window (the server starts reconcilers after subsystems and stops them first). brokers (guarded by
// mu) holds exactly the Brokers whose topic exists; the ingress answers 404 for any other Broker in the store's
// eyes and 503 for a Broker that exists but whose topic is not ready. On the embedded broker, Start deletes tide's
// groups and topics that no stored object accounts for (sweep.go); on an external cluster it never does. Reconciled
// Triggers and Brokers carry a finalizer (finalizer.go), so their deletion waits for the group or topic to be
// deleted, wherever the broker runs and whenever tide next runs.
package eventingrt
