package v1alpha1

import (
	"slices"

	"k8s.io/apimachinery/pkg/runtime"
)

// Hand-written deep copies (the shapes are small; a generator would add a build step for five types).

// DeepCopyInto copies s into out.
func (s *Selector) DeepCopyInto(out *Selector) { *out = *s }

// DeepCopy returns a copy of s.
func (s *Selector) DeepCopy() *Selector {
	if s == nil {
		return nil
	}
	out := new(Selector)
	s.DeepCopyInto(out)
	return out
}

// DeepCopy returns a copy of s.
func (s *SecretValueFromSource) DeepCopy() *SecretValueFromSource {
	if s == nil {
		return nil
	}
	return &SecretValueFromSource{SecretKeyRef: s.SecretKeyRef.DeepCopy()}
}

// DeepCopyInto copies s into out.
func (s *RocketMQSourceSpec) DeepCopyInto(out *RocketMQSourceSpec) {
	*out = *s
	out.NameServers = slices.Clone(s.NameServers)
	out.Topics = slices.Clone(s.Topics)
	out.Selector = s.Selector.DeepCopy()
	if s.MaxInFlight != nil {
		v := *s.MaxInFlight
		out.MaxInFlight = &v
	}
	out.AccessKey = s.AccessKey.DeepCopy()
	out.SecretKey = s.SecretKey.DeepCopy()
	out.AccessToken = s.AccessToken.DeepCopy()
	out.Delivery = s.Delivery.DeepCopy()
	s.SourceSpec.DeepCopyInto(&out.SourceSpec)
}

// DeepCopyInto copies s into out.
func (s *RocketMQSourceStatus) DeepCopyInto(out *RocketMQSourceStatus) {
	*out = *s
	s.SourceStatus.DeepCopyInto(&out.SourceStatus)
}

// DeepCopyInto copies s into out.
func (s *RocketMQSource) DeepCopyInto(out *RocketMQSource) {
	*out = *s
	out.TypeMeta = s.TypeMeta
	s.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	s.Spec.DeepCopyInto(&out.Spec)
	s.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a copy of s.
func (s *RocketMQSource) DeepCopy() *RocketMQSource {
	if s == nil {
		return nil
	}
	out := new(RocketMQSource)
	s.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (s *RocketMQSource) DeepCopyObject() runtime.Object {
	if c := s.DeepCopy(); c != nil {
		return c
	}
	return nil
}

// DeepCopyInto copies l into out.
func (l *RocketMQSourceList) DeepCopyInto(out *RocketMQSourceList) {
	*out = *l
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]RocketMQSource, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopyObject implements runtime.Object.
func (l *RocketMQSourceList) DeepCopyObject() runtime.Object {
	if l == nil {
		return nil
	}
	out := new(RocketMQSourceList)
	l.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies s into out.
func (s *LegacyRocketMQSource) DeepCopyInto(out *LegacyRocketMQSource) {
	*out = *s
	s.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Spec.AccessToken = s.Spec.AccessToken.DeepCopy()
	out.Spec.Sink = s.Spec.Sink.DeepCopy()
}

// DeepCopyObject implements runtime.Object.
func (s *LegacyRocketMQSource) DeepCopyObject() runtime.Object {
	if s == nil {
		return nil
	}
	out := new(LegacyRocketMQSource)
	s.DeepCopyInto(out)
	return out
}
