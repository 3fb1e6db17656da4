// Package runtime is the eventing runtime inside `tide up`: it turns the eventing libraries (eventing/bus,
// eventing/ingress, eventing/trigger, eventing/rocketmqsource) into a platform driven by the control plane.
//
// It holds the reconcilers of Broker, Trigger and RocketMQSource (both forms), the in-process route from a sink
// URL on the gateway to the Broker ingress, and the API endpoint `tide events tail` streams from. It lives beside the
// product it drives: it is eventing's one package that imports the control plane (store, reconciler framework,
// registry); eventing's data-plane packages may not, and the control plane imports no product. server builds it
// and wires it into the platform (callers name it eventingrt).
//
// Invariants: the Runtime's bus, ingress and trigger manager exist between Start and Shutdown; reconcilers run
// only in that window (the server starts reconcilers after subsystems and stops them first). brokers (guarded by
// mu) holds exactly the Brokers whose topic exists; the ingress answers 404 for any other Broker in the store's
// eyes and 503 for a Broker that exists but whose topic is not ready. On the embedded broker, Start deletes tide's
// groups and topics that no stored object accounts for (sweep.go); on an external cluster it never does. Reconciled
// Triggers and Brokers carry a finalizer (finalizer.go), so their deletion waits for the group or topic to be
// deleted, wherever the broker runs and whenever tide next runs.
package runtime
