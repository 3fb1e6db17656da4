package v1beta1

import (
	"context"
	"net"
	"strings"

	"knative.dev/pkg/apis"
)

// Validate checks the source as Knative's webhook does (topics and bootstrapServers required, initialOffset and
// ordering values, the sink), plus what tide would otherwise only find when connecting: host:port servers, SASL and
// TLS Secret references that name a Secret and a key, and the delivery spec. consumerGroup is immutable on update,
// as in Knative.
func (k *KafkaSource) Validate(ctx context.Context) *apis.FieldError {
	errs := k.Spec.Validate(ctx).ViaField("spec")
	if apis.IsInUpdate(ctx) {
		if orig, ok := apis.GetBaseline(ctx).(*KafkaSource); ok && orig != nil && orig.Spec.ConsumerGroup != k.Spec.ConsumerGroup {
			errs = errs.Also(&apis.FieldError{Message: "Immutable fields changed (-old +new)", Paths: []string{"spec.consumerGroup"},
				Details: "-" + orig.Spec.ConsumerGroup + " +" + k.Spec.ConsumerGroup})
		}
	}
	return errs
}

// Validate checks the spec.
func (s *KafkaSourceSpec) Validate(ctx context.Context) *apis.FieldError {
	var errs *apis.FieldError
	errs = errs.Also(s.SourceSpec.Validate(ctx))
	if len(s.Topics) == 0 {
		errs = errs.Also(apis.ErrMissingField("topics"))
	}
	for i, t := range s.Topics {
		if !validTopic(t) {
			errs = errs.Also(apis.ErrInvalidArrayValue(t, "topics", i))
		}
	}
	if len(s.BootstrapServers) == 0 {
		errs = errs.Also(apis.ErrMissingField("bootstrapServers"))
	}
	for i, b := range s.BootstrapServers {
		// Knative passes the list to the Kafka client, which also accepts comma-separated entries.
		for _, one := range strings.Split(b, ",") {
			if _, port, err := net.SplitHostPort(strings.TrimSpace(one)); err != nil || port == "" {
				errs = errs.Also(apis.ErrInvalidArrayValue(b, "bootstrapServers", i))
				break
			}
		}
	}
	switch s.InitialOffset {
	case OffsetEarliest, OffsetLatest:
	default:
		errs = errs.Also(apis.ErrInvalidValue(s.InitialOffset, "initialOffset", "must be earliest or latest"))
	}
	if s.Ordering != nil {
		switch *s.Ordering {
		case Ordered, Unordered:
		default:
			errs = errs.Also(apis.ErrInvalidValue(*s.Ordering, "ordering", "must be ordered or unordered"))
		}
	}
	if s.Consumers != nil && *s.Consumers < 0 {
		errs = errs.Also(apis.ErrInvalidValue(*s.Consumers, "consumers", "must not be negative"))
	}
	if s.Delivery != nil {
		errs = errs.Also(s.Delivery.Validate(ctx).ViaField("delivery"))
	}
	errs = errs.Also(s.Net.validate().ViaField("net"))
	return errs
}

func (n *KafkaNetSpec) validate() *apis.FieldError {
	var errs *apis.FieldError
	if n.SASL.Enable {
		errs = errs.Also(n.SASL.User.validate(true).ViaField("sasl", "user"))
		errs = errs.Also(n.SASL.Password.validate(true).ViaField("sasl", "password"))
		errs = errs.Also(n.SASL.Type.validate(false).ViaField("sasl", "type"))
	}
	if n.TLS.Enable {
		errs = errs.Also(n.TLS.Cert.validate(false).ViaField("tls", "cert"))
		errs = errs.Also(n.TLS.Key.validate(false).ViaField("tls", "key"))
		errs = errs.Also(n.TLS.CACert.validate(false).ViaField("tls", "caCert"))
		if (n.TLS.Cert.SecretKeyRef == nil) != (n.TLS.Key.SecretKeyRef == nil) {
			errs = errs.Also(apis.ErrGeneric("cert and key go together: set both or neither", "tls.cert", "tls.key"))
		}
	}
	return errs
}

func (v *SecretValueFromSource) validate(required bool) *apis.FieldError {
	if v.SecretKeyRef == nil {
		if required {
			return apis.ErrMissingField("secretKeyRef")
		}
		return nil
	}
	var errs *apis.FieldError
	if v.SecretKeyRef.Name == "" {
		errs = errs.Also(apis.ErrMissingField("secretKeyRef.name"))
	}
	if v.SecretKeyRef.Key == "" {
		errs = errs.Also(apis.ErrMissingField("secretKeyRef.key"))
	}
	return errs
}

// validTopic is Kafka's rule: 1-249 characters of [a-zA-Z0-9._-], not "." or "..".
func validTopic(t string) bool {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
