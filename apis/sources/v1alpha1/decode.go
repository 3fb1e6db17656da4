package v1alpha1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"sigs.k8s.io/yaml"
)

// Sentinel errors of Decode.
var (
	// ErrMalformed: the document is not valid YAML/JSON, has duplicate keys or unknown fields, or a field has the
	// wrong type.
	ErrMalformed = errors.New("malformed RocketMQSource")
	// ErrWrongKind: apiVersion/kind name something other than a RocketMQSource of either form.
	ErrWrongKind = errors.New("not a RocketMQSource")
)

// Decode strictly decodes one YAML or JSON document holding a RocketMQSource of either form
// (sources.knative.dev/v1alpha1 or the 2020 sources.eventing.knative.dev/v1alpha1) and returns the current form.
// Unknown and duplicate fields are errors naming the field. Decode neither defaults nor validates.
func Decode(data []byte) (*RocketMQSource, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if tm.Kind != Kind {
		return nil, fmt.Errorf("%w: kind: expected %s, got %q", ErrWrongKind, Kind, tm.Kind)
	}
	switch tm.APIVersion {
	case SchemeGroupVersion.String():
		out := &RocketMQSource{}
		if err := strictUnmarshal(js, out); err != nil {
			return nil, err
		}
		return out, nil
	case LegacyGroupVersion.String():
		legacy := &LegacyRocketMQSource{}
		if err := strictUnmarshal(js, legacy); err != nil {
			return nil, err
		}
		return legacy.Convert(), nil
	default:
		return nil, fmt.Errorf("%w: apiVersion: expected %s or %s, got %q", ErrWrongKind,
			SchemeGroupVersion, LegacyGroupVersion, tm.APIVersion)
	}
}

func strictUnmarshal(js []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%w: %s: expected %s, got JSON %s", ErrMalformed, te.Field, te.Type, te.Value)
		}
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}
