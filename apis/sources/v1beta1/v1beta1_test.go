package v1beta1

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"knative.dev/pkg/apis"
)

const doc = `{"apiVersion":"sources.knative.dev/v1beta1","kind":"KafkaSource","metadata":{"name":"ks","namespace":"default"},
"spec":{"consumerGroup":"knative-group","bootstrapServers":["my-cluster-kafka-bootstrap.kafka:9092"],"topics":["knative-demo-topic"],
"net":{"sasl":{"enable":true,"user":{"secretKeyRef":{"name":"s","key":"user"}},"password":{"secretKeyRef":{"name":"s","key":"password"}},
"type":{"secretKeyRef":{"name":"s","key":"saslType"}}},"tls":{"enable":true,"caCert":{"secretKeyRef":{"name":"s","key":"ca.crt"}}}},
"sink":{"ref":{"apiVersion":"serving.knative.dev/v1","kind":"Service","name":"event-display"}}}}`

// TestKnativeDocumentDefaultsAndValidates: the KafkaSource of Knative's documentation decodes, gets Knative's
// defaults and validates.
func TestKnativeDocumentDefaultsAndValidates(t *testing.T) {
	var k KafkaSource
	if err := json.Unmarshal([]byte(doc), &k); err != nil {
		t.Fatal(err)
	}
	k.SetDefaults(context.Background())
	if *k.Spec.Consumers != 1 || k.Spec.InitialOffset != OffsetLatest || *k.Spec.Ordering != Ordered || k.Spec.Sink.Ref.Namespace != "default" {
		t.Fatalf("defaults: %+v", k.Spec)
	}
	if err := k.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	k.Status.Observe(&k)
	if len(k.Status.CloudEventAttributes) != 1 || k.Status.CloudEventAttributes[0].Source != "/apis/v1/namespaces/default/kafkasources/ks#knative-demo-topic" ||
		k.Status.CloudEventAttributes[0].Type != "dev.knative.kafka.event" {
		t.Fatalf("ceAttributes %+v", k.Status.CloudEventAttributes)
	}
	if k.Status.IsReady() || k.Status.GetCondition(ConditionConnectionEstablished) == nil {
		t.Fatal("a fresh status is not ready and has every condition")
	}
}

func TestValidationNamesFields(t *testing.T) {
	bad := func(mut func(*KafkaSource)) *apis.FieldError {
		var k KafkaSource
		if err := json.Unmarshal([]byte(doc), &k); err != nil {
			t.Fatal(err)
		}
		k.SetDefaults(context.Background())
		mut(&k)
		return k.Validate(context.Background())
	}
	for want, mut := range map[string]func(*KafkaSource){
		"spec.topics":                             func(k *KafkaSource) { k.Spec.Topics = nil },
		"spec.topics[0]":                          func(k *KafkaSource) { k.Spec.Topics = []string{"bad topic"} },
		"spec.bootstrapServers":                   func(k *KafkaSource) { k.Spec.BootstrapServers = nil },
		"spec.bootstrapServers[0]":                func(k *KafkaSource) { k.Spec.BootstrapServers = []string{"no-port"} },
		"spec.initialOffset":                      func(k *KafkaSource) { k.Spec.InitialOffset = "middle" },
		"spec.ordering":                           func(k *KafkaSource) { o := DeliveryOrdering("random"); k.Spec.Ordering = &o },
		"spec.net.sasl.user.secretKeyRef":         func(k *KafkaSource) { k.Spec.Net.SASL.User.SecretKeyRef = nil },
		"spec.net.sasl.password.secretKeyRef.key": func(k *KafkaSource) { k.Spec.Net.SASL.Password.SecretKeyRef.Key = "" },
		"spec.sink":                               func(k *KafkaSource) { k.Spec.Sink.Ref = nil },
	} {
		err := bad(mut)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error naming %s, got %v", want, err)
		}
	}
	// consumerGroup is immutable.
	var old, cur KafkaSource
	_ = json.Unmarshal([]byte(doc), &old)
	_ = json.Unmarshal([]byte(doc), &cur)
	cur.SetDefaults(context.Background())
	cur.Spec.ConsumerGroup = "other"
	ctx := apis.WithinUpdate(context.Background(), &old)
	if err := cur.Validate(ctx); err == nil || !strings.Contains(err.Error(), "spec.consumerGroup") {
		t.Fatalf("changing consumerGroup: %v", err)
	}
}
