package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

const (
	// GroupName is the API group of the current form.
	GroupName = "sources.knative.dev"
	// Version is the API version of both forms.
	Version = "v1alpha1"
	// Kind is the resource kind of both forms.
	Kind = "RocketMQSource"
	// LegacyGroupName is the 2020 form's group (apache/rocketmq-externals rocketmq-knative).
	LegacyGroupName = "sources.eventing.knative.dev"
	// Resource is the plural resource name (used in event sources and URLs).
	Resource = "rocketmqsources"
)

// SchemeGroupVersion is the group/version of the current form; LegacyGroupVersion that of the 2020 form.
var (
	SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: Version}
	LegacyGroupVersion = schema.GroupVersion{Group: LegacyGroupName, Version: Version}
)

// RocketMQSource consumes RocketMQ messages and delivers them as CloudEvents to a sink.
type RocketMQSource struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RocketMQSourceSpec   `json:"spec,omitempty"`
	Status RocketMQSourceStatus `json:"status,omitempty"`
}

// RocketMQSourceList is a list of RocketMQSources.
type RocketMQSourceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RocketMQSource `json:"items"`
}

// Ordering is how messages of one queue are delivered relative to each other.
type Ordering string

const (
	// Unordered delivers up to maxInFlight messages concurrently. The default.
	Unordered Ordering = "unordered"
	// Ordered delivers one message at a time per queue, in queue order; a failing message blocks only its queue.
	Ordered Ordering = "ordered"
)

// SelectorType is the kind of server-side message filter.
type SelectorType string

const (
	// SelectorTag matches on the message tag: "*" or tags joined by "||". The default.
	SelectorTag SelectorType = "TAG"
	// SelectorSQL92 matches user properties with a SQL92 expression (the broker must enable property filtering).
	SelectorSQL92 SelectorType = "SQL92"
)

// Initial offsets besides an RFC 3339 time.
const (
	OffsetEarliest = "earliest"
	OffsetLatest   = "latest"
)

// Selector filters messages on the broker.
type Selector struct {
	// Type is TAG or SQL92; default TAG.
	Type SelectorType `json:"type,omitempty"`
	// Expression is the tag expression or the SQL92 condition; default "*" for TAG.
	Expression string `json:"expression,omitempty"`
}

// SecretValueFromSource points at one key of a v1 Secret.
type SecretValueFromSource struct {
	SecretKeyRef *corev1.SecretKeySelector `json:"secretKeyRef,omitempty"`
}

// RocketMQSourceSpec is the desired state.
type RocketMQSourceSpec struct {
	// NameServers are the RocketMQ name server addresses (host:port). Default: the platform's own name server.
	NameServers []string `json:"nameServers,omitempty"`
	// Topic is the topic to consume. Exactly one of topic and topics is set.
	Topic string `json:"topic,omitempty"`
	// Topics are several topics to consume with one consumer group.
	Topics []string `json:"topics,omitempty"`
	// ConsumerGroup is the RocketMQ consumer group; default derived stably from namespace and name.
	ConsumerGroup string `json:"consumerGroup,omitempty"`
	// Selector filters messages on the broker; default all tags.
	Selector *Selector `json:"selector,omitempty"`
	// InitialOffset is where a new consumer group starts: earliest, latest or an RFC 3339 time. Default latest.
	InitialOffset string `json:"initialOffset,omitempty"`
	// Ordering is ordered or unordered; default unordered.
	Ordering Ordering `json:"ordering,omitempty"`
	// MaxInFlight bounds concurrent deliveries in unordered mode; default DefaultMaxInFlight.
	MaxInFlight *int32 `json:"maxInFlight,omitempty"`
	// Namespace is the RocketMQ namespace (a prefix on topics and groups), not the Kubernetes namespace.
	Namespace string `json:"namespace,omitempty"`
	// AccessKey and SecretKey are ACL credentials; both or neither.
	AccessKey *SecretValueFromSource `json:"accessKey,omitempty"`
	SecretKey *SecretValueFromSource `json:"secretKey,omitempty"`
	// AccessToken is the 2020 form's credentials: one Secret key holding JSON {"url","accessKeyId","accessKeySecret"}.
	// Kept so converted manifests keep their credentials; excludes accessKey/secretKey.
	AccessToken *SecretValueFromSource `json:"accessToken,omitempty"`
	// Delivery configures retries, backoff, timeout and the dead-letter sink.
	Delivery *eventingduckv1.DeliverySpec `json:"delivery,omitempty"`

	// SourceSpec carries sink and ceOverrides.
	duckv1.SourceSpec `json:",inline"`
}

// RocketMQSourceStatus is the observed state.
type RocketMQSourceStatus struct {
	// SourceStatus carries observedGeneration, conditions, sinkUri and ceAttributes.
	duckv1.SourceStatus `json:",inline"`
	// ConsumerGroup is the consumer group in use (after defaulting).
	ConsumerGroup string `json:"consumerGroup,omitempty"`
}

// DefaultMaxInFlight is maxInFlight's default for unordered delivery.
const DefaultMaxInFlight int32 = 32

// MaxMaxInFlight bounds maxInFlight: beyond it the client's process queue, not the sink, is the limit.
const MaxMaxInFlight int32 = 1000

// AllTopics returns topic or topics as one list.
func (s *RocketMQSourceSpec) AllTopics() []string {
	if s.Topic != "" {
		return append([]string{s.Topic}, s.Topics...)
	}
	return s.Topics
}

// GetGroupVersionKind implements kmeta.OwnerRefable.
func (*RocketMQSource) GetGroupVersionKind() schema.GroupVersionKind {
	return SchemeGroupVersion.WithKind(Kind)
}

// EventSource is the CloudEvents source attribute of events mapped from topic for this RocketMQSource.
func EventSource(namespace, name, topic string) string {
	return "/apis/v1/namespaces/" + namespace + "/" + Resource + "/" + name + "#" + topic
}

// EventType is the CloudEvents type of events mapped from plain messages.
const EventType = "dev.knative.rocketmq.event"
