package v1alpha1

import (
	"encoding/json"

	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"sigs.k8s.io/yaml"
)

type duckOverrides = duckv1.CloudEventOverrides

func mustDelivery(js string) *eventingduckv1.DeliverySpec {
	d := &eventingduckv1.DeliverySpec{}
	if err := json.Unmarshal([]byte(js), d); err != nil {
		panic(err)
	}
	return d
}

func strictUnmarshalYAML(b []byte, into any) error {
	js, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return err
	}
	return strictUnmarshal(js, into)
}
