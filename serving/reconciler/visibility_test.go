package reconciler

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// TestClusterLocalURL: a Route labelled networking.knative.dev/visibility: cluster-local reports Knative's
// cluster-local URL (http://<name>.<ns>.svc.cluster.local, no port) in status.url, also for tags; others keep the
// loopback URL.
func TestClusterLocalURL(t *testing.T) {
	local := &apis.URL{Scheme: "http", Host: "hello.ns.localhost:8080"}
	pub := &servingv1.Route{ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "ns"}}
	if got := publicURL(pub, "hello", local); got.String() != "http://hello.ns.localhost:8080" {
		t.Errorf("public route: %s", got)
	}
	priv := pub.DeepCopy()
	priv.Labels = map[string]string{VisibilityLabel: VisibilityClusterLocal}
	if got := publicURL(priv, "hello", local); got.String() != "http://hello.ns.svc.cluster.local" {
		t.Errorf("cluster-local route: %s", got)
	}
	if got := publicURL(priv, "green-hello", local); got.String() != "http://green-hello.ns.svc.cluster.local" {
		t.Errorf("cluster-local tag: %s", got)
	}
	other := pub.DeepCopy()
	other.Labels = map[string]string{VisibilityLabel: "public"}
	if ClusterLocal(other.Labels) {
		t.Error("visibility other than cluster-local is public")
	}
}
