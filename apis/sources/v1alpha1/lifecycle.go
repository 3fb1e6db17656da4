package v1alpha1

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// Condition types.
const (
	// ConditionReady is true when the sink is resolved and the consumer is running.
	ConditionReady = apis.ConditionReady
	// ConditionSinkProvided is true when the sink resolved to a URI.
	ConditionSinkProvided apis.ConditionType = "SinkProvided"
	// ConditionDeployed is true when the consumer is subscribed and running.
	ConditionDeployed apis.ConditionType = "Deployed"
)

// Reasons for false conditions; each names the problem a user has to fix.
const (
	ReasonSinkNotFound          = "SinkNotFound"
	ReasonNameServerUnreachable = "NameServerUnreachable"
	ReasonTopicNotFound         = "TopicNotFound"
	ReasonBadCredentials        = "BadCredentials"
	ReasonConsumerFailed        = "ConsumerFailed"
)

var condSet = apis.NewLivingConditionSet(ConditionSinkProvided, ConditionDeployed)

// GetConditionSet returns the RocketMQSource condition set.
func (*RocketMQSource) GetConditionSet() apis.ConditionSet { return condSet }

// GetStatus returns the duck status (for generic reconcilers).
func (s *RocketMQSource) GetStatus() *duckv1.Status { return &s.Status.Status }

// InitializeConditions sets unset conditions to Unknown.
func (s *RocketMQSourceStatus) InitializeConditions() { condSet.Manage(s).InitializeConditions() }

// GetCondition returns the condition of type t, or nil.
func (s *RocketMQSourceStatus) GetCondition(t apis.ConditionType) *apis.Condition {
	return condSet.Manage(s).GetCondition(t)
}

// IsReady reports whether Ready is true.
func (s *RocketMQSourceStatus) IsReady() bool { return condSet.Manage(s).IsHappy() }

// MarkSink records the resolved sink URI and marks SinkProvided true.
func (s *RocketMQSourceStatus) MarkSink(uri *apis.URL) {
	s.SinkURI = uri
	if uri == nil || uri.String() == "" {
		condSet.Manage(s).MarkFalse(ConditionSinkProvided, ReasonSinkNotFound, "the sink resolved to an empty URI")
		return
	}
	condSet.Manage(s).MarkTrue(ConditionSinkProvided)
}

// MarkNoSink marks SinkProvided false with reason (usually ReasonSinkNotFound) and a message (taken literally).
func (s *RocketMQSourceStatus) MarkNoSink(reason, message string) {
	s.SinkURI = nil
	condSet.Manage(s).MarkFalse(ConditionSinkProvided, reason, "%s", message)
}

// MarkDeployed marks Deployed true.
func (s *RocketMQSourceStatus) MarkDeployed() { condSet.Manage(s).MarkTrue(ConditionDeployed) }

// MarkNotDeployed marks Deployed false with a reason such as ReasonNameServerUnreachable and a message, taken
// literally (messages often hold RocketMQ names such as %RETRY%group, which must not be read as format verbs).
func (s *RocketMQSourceStatus) MarkNotDeployed(reason, message string) {
	condSet.Manage(s).MarkFalse(ConditionDeployed, reason, "%s", message)
}

// MarkDeploying marks Deployed unknown while the consumer starts.
func (s *RocketMQSourceStatus) MarkDeploying(reason, message string) {
	condSet.Manage(s).MarkUnknown(ConditionDeployed, reason, "%s", message)
}

// Reasons a cluster controller adds (tide's in-process runtime never reports them).
const (
	// ReasonInvalidSpec: the object was stored without validation (a cluster has no tide webhook) and is invalid.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonDeploymentUnavailable: the adapter's Deployment exists but has no available replica yet.
	ReasonDeploymentUnavailable = "DeploymentUnavailable"
	// ReasonDeploymentConflict: a Deployment of the adapter's name exists and belongs to someone else.
	ReasonDeploymentConflict = "DeploymentConflict"
)

// Observe records what every reconciler of a RocketMQSource records before acting, wherever the adapter runs:
// observedGeneration, the consumer group in use (after defaulting), the CloudEvent attributes the source emits
// (one type and source per topic, Knative's ceAttributes), and Unknown for conditions not yet set. src must be
// defaulted.
func (s *RocketMQSourceStatus) Observe(src *RocketMQSource) {
	s.InitializeConditions()
	s.ObservedGeneration = src.Generation
	s.ConsumerGroup = src.Spec.ConsumerGroup
	if s.ConsumerGroup == "" {
		s.ConsumerGroup = DefaultConsumerGroup(src.Namespace, src.Name)
	}
	s.CloudEventAttributes = nil
	for _, t := range src.Spec.AllTopics() {
		s.CloudEventAttributes = append(s.CloudEventAttributes, duckv1.CloudEventAttributes{
			Type: EventType, Source: EventSource(src.Namespace, src.Name, t)})
	}
}

// PropagateDeploymentAvailability sets Deployed from the adapter Deployment's Available condition, as Knative's
// sources do on a cluster: True when the Deployment has an available replica, False with the Deployment's own
// reason when it says False, Unknown while it is rolling out.
func (s *RocketMQSourceStatus) PropagateDeploymentAvailability(d *appsv1.Deployment) {
	for _, c := range d.Status.Conditions {
		if c.Type != appsv1.DeploymentAvailable {
			continue
		}
		switch c.Status {
		case corev1.ConditionTrue:
			s.MarkDeployed()
		case corev1.ConditionFalse:
			s.MarkNotDeployed(orString(c.Reason, ReasonDeploymentUnavailable), c.Message)
		default:
			s.MarkDeploying(orString(c.Reason, ReasonDeploymentUnavailable), c.Message)
		}
		return
	}
	s.MarkDeploying(ReasonDeploymentUnavailable, "the adapter Deployment "+d.Name+" has not reported availability yet")
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
