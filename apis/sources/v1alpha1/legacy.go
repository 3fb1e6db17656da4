package v1alpha1

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// AnnotationConvertedFrom marks an object converted from another form; its value is the original apiVersion.
const AnnotationConvertedFrom = "sources.knative.dev/converted-from"

// AnnotationServiceAccountName keeps the 2020 form's serviceAccountName, which has no meaning outside a cluster.
const AnnotationServiceAccountName = "sources.knative.dev/service-account-name"

// LegacyRocketMQSource is the 2020 form, sources.eventing.knative.dev/v1alpha1 RocketMQSource, as published by
// apache/rocketmq-externals (rocketmq-knative). Only its spec is read; its status is never written.
type LegacyRocketMQSource struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              LegacyRocketMQSourceSpec `json:"spec,omitempty"`
	// Status is accepted (manifests exported from a cluster carry it) and dropped.
	Status map[string]any `json:"status,omitempty"`
}

// LegacyRocketMQSourceSpec is the 2020 spec.
type LegacyRocketMQSourceSpec struct {
	// Topic is the one topic consumed.
	Topic string `json:"topic,omitempty"`
	// NamesrvAddr is the name server list in RocketMQ's own notation, "host:port;host:port".
	NamesrvAddr string `json:"namesrvAddr,omitempty"`
	// Namespace is the RocketMQ namespace.
	Namespace string `json:"namespace,omitempty"`
	// GroupName is the consumer group.
	GroupName string `json:"groupName,omitempty"`
	// AccessToken points at a Secret key holding JSON {"url","accessKeyId","accessKeySecret"}.
	AccessToken *SecretValueFromSource `json:"accessToken,omitempty"`
	// Sink is an ObjectReference to an Addressable.
	Sink *corev1.ObjectReference `json:"sink,omitempty"`
	// ServiceAccountName is the Kubernetes service account of the 2020 adapter pod.
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
}

// LegacyCredentials is the JSON the 2020 form's accessToken Secret holds.
type LegacyCredentials struct {
	URL             string `json:"url"`
	AccessKeyID     string `json:"accessKeyId"`
	AccessKeySecret string `json:"accessKeySecret"`
}

// Convert returns the current form of a 2020 RocketMQSource. Fields map one to one (namesrvAddr is split on ';',
// groupName becomes consumerGroup, the sink ObjectReference becomes a Destination ref); the 2020 behaviour that had
// no field (deliver unordered, start from the latest offset) is what the current defaults give. The result is not
// defaulted or validated.
func (l *LegacyRocketMQSource) Convert() *RocketMQSource {
	out := &RocketMQSource{
		TypeMeta: metav1.TypeMeta{APIVersion: SchemeGroupVersion.String(), Kind: Kind},
	}
	l.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[AnnotationConvertedFrom] = LegacyGroupVersion.String()
	if l.Spec.ServiceAccountName != "" {
		out.Annotations[AnnotationServiceAccountName] = l.Spec.ServiceAccountName
	}
	s := &out.Spec
	for _, a := range strings.Split(l.Spec.NamesrvAddr, ";") {
		if a = strings.TrimSpace(a); a != "" {
			s.NameServers = append(s.NameServers, a)
		}
	}
	s.Topic = l.Spec.Topic
	s.ConsumerGroup = l.Spec.GroupName
	s.Namespace = l.Spec.Namespace
	s.AccessToken = l.Spec.AccessToken.DeepCopy()
	if ref := l.Spec.Sink; ref != nil {
		s.Sink = duckv1.Destination{Ref: &duckv1.KReference{
			APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name, Namespace: ref.Namespace,
		}}
	}
	return out
}
