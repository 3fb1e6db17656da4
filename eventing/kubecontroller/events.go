package kubecontroller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
)

// Kubernetes Events on the sources, as Knative's source controllers record them (`kubectl get events`,
// `kubectl describe rocketmqsource`): client-go's record package, which aggregates repeats into one Event with a
// count and rate-limits per object, writing v1 Events through the core client.
//
// Reasons: DeploymentCreated, DeploymentUpdated, DeploymentDeleted (Normal); InvalidSpec, SinkNotFound,
// DeploymentConflict (Warning, when the source's Deployed condition turns to that reason, not on every retry).
const (
	ReasonDeploymentCreated = "DeploymentCreated"
	ReasonDeploymentUpdated = "DeploymentUpdated"
	ReasonDeploymentDeleted = "DeploymentDeleted"
)

// newRecorder starts an event broadcaster writing to the API server; stop ends it.
func newRecorder(ctx context.Context, events corev1client.EventsGetter) (rec record.EventRecorder, stop func()) {
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&corev1client.EventSinkImpl{Interface: events.Events("")})
	// The sources are unstructured objects carrying their apiVersion and kind, so an empty scheme makes their
	// references.
	return b.NewRecorder(runtime.NewScheme(), corev1.EventSource{Component: ControllerName}), b.Shutdown
}

// warnOnChange records a Warning when the Deployed condition's reason becomes reason (a retry of the same failure
// records nothing new).
func (c *Controller) warnOnChange(obj runtime.Object, before *v1alpha1.RocketMQSourceStatus, reason, message string) {
	if cond := before.GetCondition(v1alpha1.ConditionDeployed); cond != nil && cond.Reason == reason {
		return
	}
	c.recorder.Event(obj, corev1.EventTypeWarning, reason, message)
}
