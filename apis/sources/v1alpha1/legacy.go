package v1alpha1

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
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

// legacyPaths maps current-form field paths back to the 2020 fields they came from, so errors about a 2020
// manifest name the field the user wrote.
var legacyPaths = map[string]string{
	"spec.nameServers":   "spec.namesrvAddr",
	"spec.consumerGroup": "spec.groupName",
	"spec.sink.ref":      "spec.sink",
	"spec.sink":          "spec.sink",
}

// SetDefaults is a no-op: the 2020 form is stored as written and defaulted after conversion (Convert, then
// RocketMQSource.SetDefaults), so `tide get` can show the converted form.
func (l *LegacyRocketMQSource) SetDefaults(context.Context) {}

// Validate converts the 2020 form, defaults and validates the result, and reports errors at the 2020 field paths
// (spec.namesrvAddr, spec.groupName, spec.sink, ...). It makes the 2020 type usable wherever an apis.Validatable
// is expected.
func (l *LegacyRocketMQSource) Validate(ctx context.Context) *apis.FieldError {
	c := l.Convert()
	c.SetDefaults(ctx)
	fe := c.Validate(ctx)
	if fe == nil {
		return nil
	}
	var out *apis.FieldError
	for _, e := range fe.WrappedErrors() {
		m := *e
		m.Paths = nil
		for _, p := range e.Paths {
			for cur, old := range legacyPaths {
				if p == cur || strings.HasPrefix(p, cur+".") || strings.HasPrefix(p, cur+"[") {
					p = old + p[len(cur):]
					if strings.HasPrefix(p, "spec.namesrvAddr[") { // one string in the 2020 form
						p = "spec.namesrvAddr"
					}
					break
				}
			}
			m.Paths = append(m.Paths, p)
		}
		out = out.Also(&m)
	}
	return out
}
