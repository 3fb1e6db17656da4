package trigger

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	duckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"

	"github.com/tide-run/tide/eventing/delivery"
)

func TestConfigFromTrigger(t *testing.T) {
	sub, _ := url.Parse("http://order-service.default.127.0.0.1.sslip.io")
	dls, _ := url.Parse("http://dls.default.example")
	retry := int32(3)
	delay := "PT0.2S"
	linear := duckv1.BackoffPolicyLinear
	tr := &eventingv1.Trigger{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "orders",
			Annotations: map[string]string{OrderAnnotation: "ordered"}},
		Spec: eventingv1.TriggerSpec{
			Broker: "default",
			Filter: &eventingv1.TriggerFilter{Attributes: map[string]string{"type": "order.created"}},
		},
	}
	broker := &duckv1.DeliverySpec{Retry: &retry, BackoffDelay: &delay, BackoffPolicy: &linear}
	cfg, err := ConfigFromTrigger(tr, Resolved{Topic: "tide-default-default", Subscriber: sub, DeadLetter: dls, BrokerDelivery: broker})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Ordered || cfg.Delivery.Retry != 3 || cfg.Delivery.BackoffDelay != 200*time.Millisecond ||
		cfg.Delivery.BackoffPolicy != delivery.BackoffLinear || cfg.Delivery.DeadLetter != dls || cfg.Broker != "default" {
		t.Fatalf("config %+v", cfg)
	}
	// The Trigger's own delivery wins over the Broker's.
	own := int32(1)
	tr.Spec.Delivery = &duckv1.DeliverySpec{Retry: &own}
	cfg, err = ConfigFromTrigger(tr, Resolved{Topic: "t", Subscriber: sub, BrokerDelivery: broker})
	if err != nil || cfg.Delivery.Retry != 1 {
		t.Fatalf("%v %+v", err, cfg.Delivery)
	}
	bad := "soon"
	tr.Spec.Delivery = &duckv1.DeliverySpec{BackoffDelay: &bad}
	if _, err := ConfigFromTrigger(tr, Resolved{Topic: "t", Subscriber: sub}); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "spec.delivery") {
		t.Fatalf("bad delay: %v", err)
	}
	tr.Spec.Delivery = nil
	tr.Annotations[OrderAnnotation] = "random"
	if _, err := ConfigFromTrigger(tr, Resolved{Topic: "t", Subscriber: sub}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad annotation: %v", err)
	}
}
