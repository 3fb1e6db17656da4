package v1alpha1

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"knative.dev/eventing/pkg/apis/feature"
	"knative.dev/pkg/apis"
)

// Limits RocketMQ puts on names (Java TopicValidator): topics up to 127 characters, groups up to 255, both from the
// characters a-z A-Z 0-9 _ - % |.
const maxTopicLen = 127

func validRocketMQName(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '%' || c == '|') {
			return false
		}
	}
	return s != ""
}

// Validate checks the object; errors carry field paths from the object root (spec.topic, metadata.name, ...).
func (s *RocketMQSource) Validate(ctx context.Context) *apis.FieldError {
	ctx = apis.WithinParent(ctx, s.ObjectMeta)
	var errs *apis.FieldError
	if s.Name == "" {
		errs = errs.Also(apis.ErrMissingField("metadata.name"))
	}
	return errs.Also(s.Spec.Validate(ctx).ViaField("spec"))
}

// Validate checks the spec; paths are relative to spec.
func (s *RocketMQSourceSpec) Validate(ctx context.Context) *apis.FieldError {
	var errs *apis.FieldError

	if len(s.NameServers) == 0 {
		errs = errs.Also(&apis.FieldError{Message: "missing field(s)", Paths: []string{"nameServers"},
			Details: "at least one name server host:port is required (no platform default is configured)"})
	}
	for i, addr := range s.NameServers {
		if err := validateHostPort(addr); err != nil {
			errs = errs.Also(&apis.FieldError{Message: "invalid value: " + addr, Paths: []string{fmt.Sprintf("nameServers[%d]", i)}, Details: err.Error()})
		}
	}

	switch {
	case s.Topic == "" && len(s.Topics) == 0:
		errs = errs.Also(apis.ErrMissingOneOf("topic", "topics"))
	case s.Topic != "" && len(s.Topics) > 0:
		errs = errs.Also(apis.ErrMultipleOneOf("topic", "topics"))
	case s.Topic != "":
		errs = errs.Also(validateTopic(s.Topic).ViaField("topic"))
	default:
		seen := map[string]bool{}
		for i, t := range s.Topics {
			errs = errs.Also(validateTopic(t).ViaFieldIndex("topics", i))
			if seen[t] {
				errs = errs.Also(apis.ErrGeneric(fmt.Sprintf("duplicate topic %q", t), fmt.Sprintf("topics[%d]", i)))
			}
			seen[t] = true
		}
	}

	switch {
	case s.ConsumerGroup == "":
		errs = errs.Also(apis.ErrMissingField("consumerGroup"))
	case !validRocketMQName(s.ConsumerGroup) || len(s.ConsumerGroup) > maxGroupLen:
		errs = errs.Also(apis.ErrInvalidValue(s.ConsumerGroup, "consumerGroup",
			"expected up to 255 characters from a-z A-Z 0-9 _ - % |"))
	}

	if sel := s.Selector; sel != nil {
		switch sel.Type {
		case SelectorTag, "":
		case SelectorSQL92:
			if strings.TrimSpace(sel.Expression) == "" {
				errs = errs.Also(apis.ErrMissingField("selector.expression"))
			}
		default:
			errs = errs.Also(apis.ErrInvalidValue(sel.Type, "selector.type", "expected TAG or SQL92"))
		}
	}

	if _, _, err := ParseInitialOffset(s.InitialOffset); err != nil {
		errs = errs.Also(apis.ErrInvalidValue(s.InitialOffset, "initialOffset", err.Error()))
	}

	switch s.Ordering {
	case Ordered:
		if s.MaxInFlight != nil && *s.MaxInFlight != 1 {
			errs = errs.Also(apis.ErrGeneric("maxInFlight applies to unordered delivery only (ordered delivers one message per queue at a time)", "maxInFlight"))
		}
	case Unordered, "":
		if m := s.MaxInFlight; m != nil && (*m < 1 || *m > MaxMaxInFlight) {
			errs = errs.Also(apis.ErrOutOfBoundsValue(*m, 1, MaxMaxInFlight, "maxInFlight"))
		}
	default:
		errs = errs.Also(apis.ErrInvalidValue(s.Ordering, "ordering", "expected ordered or unordered"))
	}

	if s.Namespace != "" && !validRocketMQName(s.Namespace) {
		errs = errs.Also(apis.ErrInvalidValue(s.Namespace, "namespace", "a RocketMQ namespace uses only a-z A-Z 0-9 _ - % |"))
	}

	errs = errs.Also(validateCredentials(s))

	if s.Delivery != nil {
		if feature.FromContext(ctx) == nil {
			// Knative gates delivery.timeout behind a feature flag that is on by default; without cluster
			// configuration in the context, apply that default rather than rejecting the field.
			if flags, err := feature.NewFlagsConfigFromMap(nil); err == nil {
				ctx = feature.ToContext(ctx, flags)
			}
		}
		errs = errs.Also(s.Delivery.Validate(ctx).ViaField("delivery"))
	}
	return errs.Also(s.SourceSpec.Validate(ctx))
}

func validateCredentials(s *RocketMQSourceSpec) *apis.FieldError {
	var errs *apis.FieldError
	if (s.AccessKey == nil) != (s.SecretKey == nil) {
		missing := "accessKey"
		if s.SecretKey == nil {
			missing = "secretKey"
		}
		errs = errs.Also(&apis.FieldError{Message: "missing field(s)", Paths: []string{missing},
			Details: "accessKey and secretKey are set together"})
	}
	if s.AccessToken != nil && (s.AccessKey != nil || s.SecretKey != nil) {
		errs = errs.Also(apis.ErrMultipleOneOf("accessToken", "accessKey"))
	}
	for field, v := range map[string]*SecretValueFromSource{"accessKey": s.AccessKey, "secretKey": s.SecretKey, "accessToken": s.AccessToken} {
		if v == nil {
			continue
		}
		switch {
		case v.SecretKeyRef == nil:
			errs = errs.Also(apis.ErrMissingField(field + ".secretKeyRef"))
		default:
			if v.SecretKeyRef.Name == "" {
				errs = errs.Also(apis.ErrMissingField(field + ".secretKeyRef.name"))
			}
			if v.SecretKeyRef.Key == "" {
				errs = errs.Also(apis.ErrMissingField(field + ".secretKeyRef.key"))
			}
		}
	}
	return errs
}

func validateTopic(t string) *apis.FieldError {
	if !validRocketMQName(t) || len(t) > maxTopicLen {
		return apis.ErrInvalidValue(t, apis.CurrentField, "expected up to 127 characters from a-z A-Z 0-9 _ - % |")
	}
	return nil
}

func validateHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if strings.Contains(addr, ";") {
			return fmt.Errorf("expected one host:port per list entry, got %q", addr)
		}
		return fmt.Errorf("expected host:port: %w", err)
	}
	if host == "" {
		return fmt.Errorf("expected host:port, the host is empty")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("expected a port in 1..65535, got %q", port)
	}
	return nil
}

// ParseInitialOffset parses spec.initialOffset: "" and "latest" give (latest, zero time); "earliest" gives
// (earliest, zero time); an RFC 3339 time gives ("", t).
func ParseInitialOffset(s string) (string, time.Time, error) {
	switch s {
	case "", OffsetLatest:
		return OffsetLatest, time.Time{}, nil
	case OffsetEarliest:
		return OffsetEarliest, time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("expected earliest, latest or an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	return "", t, nil
}
