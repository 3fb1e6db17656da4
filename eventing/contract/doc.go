// Package contract names what Knative Eventing's Broker contract fixes and both sides of tide's Broker use: the
// extension attributes the ingress stamps and the Trigger dispatcher reads (knativearrivaltime, knativebrokerttl),
// and the errors storing an event into a Broker can end with. It is a leaf, so eventing/trigger need not import its
// sibling eventing/ingress for a few names.
package contract
