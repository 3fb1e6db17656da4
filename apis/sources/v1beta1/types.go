package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

const (
	// GroupName is the API group.
	GroupName = "sources.knative.dev"
	// Version is the API version.
	Version = "v1beta1"
	// Kind is the resource kind.
	Kind = "KafkaSource"
	// Resource is the plural resource name (used in the event source attribute).
	Resource = "kafkasources"
	// Singular is the singular resource name.
	Singular = "kafkasource"
)

// SchemeGroupVersion is the group/version of KafkaSource.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: Version}

// KafkaSource consumes Kafka records and delivers them as CloudEvents to a sink.
type KafkaSource struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   KafkaSourceSpec   `json:"spec,omitempty"`
	Status KafkaSourceStatus `json:"status,omitempty"`
}

// KafkaSourceList is a list of KafkaSources.
type KafkaSourceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KafkaSource `json:"items"`
}

// Offset is where a consumer group without committed offsets starts.
type Offset string

// DeliveryOrdering is how records of one partition are delivered relative to each other.
type DeliveryOrdering string

const (
	// OffsetEarliest starts at the oldest record of each partition.
	OffsetEarliest Offset = "earliest"
	// OffsetLatest starts after the newest record at the time the source's offsets are first committed. The default.
	OffsetLatest Offset = "latest"

	// Ordered delivers one record at a time per partition, in offset order. Knative's default.
	Ordered DeliveryOrdering = "ordered"
	// Unordered delivers records of a partition concurrently (offsets are still committed in order).
	Unordered DeliveryOrdering = "unordered"
)

// SASL mechanisms of net.sasl.type.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// KafkaSourceSpec is the desired state.
type KafkaSourceSpec struct {
	// Consumers is the number of consumers in the group (Knative scales its dispatcher pods with it); tide runs one
	// consumer per source and keeps the field for compatibility. Default 1.
	Consumers *int32 `json:"consumers,omitempty"`

	// KafkaAuthSpec carries bootstrapServers and net (SASL, TLS).
	KafkaAuthSpec `json:",inline"`

	// Topics to consume.
	Topics []string `json:"topics"`
	// ConsumerGroup is the Kafka consumer group ID; default knative-kafka-source-<metadata.uid>.
	ConsumerGroup string `json:"consumerGroup,omitempty"`
	// InitialOffset is earliest or latest (default); it applies only to partitions without committed offsets.
	InitialOffset Offset `json:"initialOffset,omitempty"`
	// Delivery configures retries, backoff, timeout and the dead-letter sink.
	Delivery *eventingduckv1.DeliverySpec `json:"delivery,omitempty"`
	// Ordering is ordered (default) or unordered.
	Ordering *DeliveryOrdering `json:"ordering,omitempty"`

	// SourceSpec carries sink and ceOverrides.
	duckv1.SourceSpec `json:",inline"`
}

// KafkaAuthSpec is how to reach and authenticate to the Kafka cluster.
type KafkaAuthSpec struct {
	// BootstrapServers are host:port addresses of brokers.
	BootstrapServers []string `json:"bootstrapServers"`
	// Net configures SASL and TLS.
	Net KafkaNetSpec `json:"net,omitempty"`
}

// KafkaNetSpec configures SASL and TLS.
type KafkaNetSpec struct {
	SASL KafkaSASLSpec `json:"sasl,omitempty"`
	TLS  KafkaTLSSpec  `json:"tls,omitempty"`
}

// KafkaSASLSpec configures SASL authentication from Secrets.
type KafkaSASLSpec struct {
	Enable bool `json:"enable,omitempty"`
	// User is the SASL user name.
	User SecretValueFromSource `json:"user,omitempty"`
	// Password is the SASL password.
	Password SecretValueFromSource `json:"password,omitempty"`
	// Type is the mechanism: PLAIN (default), SCRAM-SHA-256 or SCRAM-SHA-512.
	Type SecretValueFromSource `json:"type,omitempty"`
}

// KafkaTLSSpec configures TLS from Secrets.
type KafkaTLSSpec struct {
	Enable bool `json:"enable,omitempty"`
	// Cert and Key are a PEM client certificate and its key (both or neither).
	Cert SecretValueFromSource `json:"cert,omitempty"`
	Key  SecretValueFromSource `json:"key,omitempty"`
	// CACert is PEM CA certificates to trust instead of the system's.
	CACert SecretValueFromSource `json:"caCert,omitempty"`
}

// SecretValueFromSource points at one key of a v1 Secret.
type SecretValueFromSource struct {
	SecretKeyRef *corev1.SecretKeySelector `json:"secretKeyRef,omitempty"`
}

// KafkaSourceStatus is the observed state.
type KafkaSourceStatus struct {
	// SourceStatus carries observedGeneration, conditions, sinkUri and ceAttributes.
	duckv1.SourceStatus `json:",inline"`
	// Consumers is the number of consumers running in the group (1 in tide once deployed).
	Consumers int32 `json:"consumers,omitempty"`
	// Selector and Claims are Knative's scaling and scheduling fields; tide leaves them empty.
	Selector string `json:"selector,omitempty"`
	Claims   string `json:"claims,omitempty"`
}

// GetGroupVersionKind implements kmeta.OwnerRefable.
func (*KafkaSource) GetGroupVersionKind() schema.GroupVersionKind {
	return SchemeGroupVersion.WithKind(Kind)
}

// EventType is the CloudEvents type of events mapped from records that are not CloudEvents.
const EventType = "dev.knative.kafka.event"

// EventSource is the CloudEvents source attribute of records of topic mapped for this KafkaSource.
func EventSource(namespace, name, topic string) string {
	return "/apis/v1/namespaces/" + namespace + "/" + Resource + "/" + name + "#" + topic
}

// DefaultConsumerGroup is the consumer group of a source that names none: Knative's prefix with the object's uid
// (Knative defaults to the prefix and a random UUID once, at creation; the uid is as stable and survives an apply
// of the same document).
func DefaultConsumerGroup(uid string) string { return "knative-kafka-source-" + uid }
