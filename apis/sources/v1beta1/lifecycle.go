package v1beta1

import (
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// Condition types, as Knative's KafkaSource.
const (
	ConditionReady                                      = apis.ConditionReady
	ConditionSinkProvided            apis.ConditionType = "SinkProvided"
	ConditionDeployed                apis.ConditionType = "Deployed"
	ConditionConnectionEstablished   apis.ConditionType = "ConnectionEstablished"
	ConditionInitialOffsetsCommitted apis.ConditionType = "InitialOffsetsCommitted"
)

// Reasons for false conditions; each names the problem a user has to fix.
const (
	ReasonSinkNotFound        = "SinkNotFound"
	ReasonBrokersUnreachable  = "BrokersUnreachable"
	ReasonTopicNotFound       = "TopicNotFound"
	ReasonBadCredentials      = "BadCredentials"
	ReasonConsumerFailed      = "ConsumerFailed"
	ReasonOffsetsNotCommitted = "OffsetsNotCommitted"
)

// condSet is Knative's living condition set of KafkaSource: Ready is the conjunction of these.
var condSet = apis.NewLivingConditionSet(ConditionSinkProvided, ConditionDeployed, ConditionConnectionEstablished,
	ConditionInitialOffsetsCommitted)

// GetConditionSet returns the KafkaSource condition set.
func (*KafkaSource) GetConditionSet() apis.ConditionSet { return condSet }

// GetStatus returns the duck status.
func (s *KafkaSource) GetStatus() *duckv1.Status { return &s.Status.Status }

// InitializeConditions sets unset conditions to Unknown.
func (s *KafkaSourceStatus) InitializeConditions() { condSet.Manage(s).InitializeConditions() }

// GetCondition returns the condition of type t, or nil.
func (s *KafkaSourceStatus) GetCondition(t apis.ConditionType) *apis.Condition {
	return condSet.Manage(s).GetCondition(t)
}

// IsReady reports whether Ready is true.
func (s *KafkaSourceStatus) IsReady() bool { return condSet.Manage(s).IsHappy() }

// MarkSink records the resolved sink URI and marks SinkProvided true.
func (s *KafkaSourceStatus) MarkSink(uri *apis.URL) {
	s.SinkURI = uri
	if uri == nil || uri.IsEmpty() {
		condSet.Manage(s).MarkUnknown(ConditionSinkProvided, "SinkEmpty", "Sink has resolved to empty.")
		return
	}
	condSet.Manage(s).MarkTrue(ConditionSinkProvided)
}

// MarkNoSink marks SinkProvided false.
func (s *KafkaSourceStatus) MarkNoSink(reason, message string) {
	s.SinkURI = nil
	condSet.Manage(s).MarkFalse(ConditionSinkProvided, reason, "%s", message)
}

// MarkDeployed marks Deployed true with one consumer running.
func (s *KafkaSourceStatus) MarkDeployed() {
	s.Consumers = 1
	condSet.Manage(s).MarkTrue(ConditionDeployed)
}

// MarkNotDeployed marks Deployed false.
func (s *KafkaSourceStatus) MarkNotDeployed(reason, message string) {
	s.Consumers = 0
	condSet.Manage(s).MarkFalse(ConditionDeployed, reason, "%s", message)
}

// MarkConnectionEstablished marks ConnectionEstablished true.
func (s *KafkaSourceStatus) MarkConnectionEstablished() {
	condSet.Manage(s).MarkTrue(ConditionConnectionEstablished)
}

// MarkConnectionNotEstablished marks ConnectionEstablished false.
func (s *KafkaSourceStatus) MarkConnectionNotEstablished(reason, message string) {
	condSet.Manage(s).MarkFalse(ConditionConnectionEstablished, reason, "%s", message)
}

// MarkInitialOffsetCommitted marks InitialOffsetsCommitted true.
func (s *KafkaSourceStatus) MarkInitialOffsetCommitted() {
	condSet.Manage(s).MarkTrue(ConditionInitialOffsetsCommitted)
}

// MarkInitialOffsetNotCommitted marks InitialOffsetsCommitted false.
func (s *KafkaSourceStatus) MarkInitialOffsetNotCommitted(reason, message string) {
	condSet.Manage(s).MarkFalse(ConditionInitialOffsetsCommitted, reason, "%s", message)
}

// Observe sets observedGeneration, initializes the conditions and records the CloudEvent attributes the source
// produces (one type, one source per topic), as Knative's reconciler does.
func (s *KafkaSourceStatus) Observe(src *KafkaSource) {
	s.ObservedGeneration = src.Generation
	s.InitializeConditions()
	s.CloudEventAttributes = nil
	for _, t := range src.Spec.Topics {
		s.CloudEventAttributes = append(s.CloudEventAttributes, duckv1.CloudEventAttributes{
			Type: EventType, Source: EventSource(src.Namespace, src.Name, t)})
	}
}
