package reconciler

import (
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// VisibilityLabel and VisibilityClusterLocal mark a Route (or a Service, whose labels its Route inherits) as
// reachable from inside the cluster only, as Knative's networking.knative.dev/visibility label does. tide's
// gateway answers such routes for loopback callers only.
const (
	VisibilityLabel        = "networking.knative.dev/visibility"
	VisibilityClusterLocal = "cluster-local"
)

// ClusterLocal reports whether labels mark a route cluster-local.
func ClusterLocal(labels map[string]string) bool {
	return labels[VisibilityLabel] == VisibilityClusterLocal
}

// publicURL is the status.url of a route (or tag) whose loopback URL is local: the same for a public route; for
// a cluster-local one, Knative's cluster-local form http://<name>.<namespace>.svc.cluster.local (no port), which
// the gateway answers when a loopback caller sends it as Host. status.address.url keeps the loopback URL, which
// resolves on this machine.
func publicURL(route *servingv1.Route, name string, local *apis.URL) *apis.URL {
	if !ClusterLocal(route.Labels) {
		return local
	}
	return &apis.URL{Scheme: "http", Host: name + "." + route.Namespace + ".svc.cluster.local"}
}
