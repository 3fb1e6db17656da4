package rocketmqsource

import (
	"context"
	"net/url"
	"os"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
)

// TestEnvFromSourceRoundTrips: the environment the cluster controller gives an adapter container configures the
// same adapter as the source does inside tide. Secret references are resolved here as the kubelet would.
func TestEnvFromSourceRoundTrips(t *testing.T) {
	sink, _ := url.Parse("http://broker-ingress.knative-eventing.svc.cluster.local/shop/default")
	dls, _ := url.Parse("http://127.0.0.1:9999/dead")
	secrets := map[string]string{"rocketmq-acl/accessKey": "AK", "rocketmq-acl/secretKey": "SK",
		"legacy/token": `{"url":"http://x","accessKeyId":"LAK","accessKeySecret":"LSK"}`}
	full, err := os.ReadFile("../../apis/sources/v1alpha1/testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := os.ReadFile("../../apis/sources/v1alpha1/testdata/legacy-2020.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string][]byte{"full": full, "legacy": legacy,
		"minimal": []byte("apiVersion: sources.knative.dev/v1alpha1\nkind: RocketMQSource\nmetadata: {name: m, namespace: ns}\nspec: {topic: t, sink: {uri: 'http://x'}}\n")} {
		t.Run(name, func(t *testing.T) {
			src, err := v1alpha1.Decode(doc)
			if err != nil {
				t.Fatal(err)
			}
			if src.Spec.AccessToken != nil {
				src.Spec.AccessToken.SecretKeyRef = &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "legacy"}, Key: "token"}
			}
			src.SetDefaults(v1alpha1.WithDefaultNameServers(context.Background(), []string{"10.0.0.1:9876"}))
			if fe := src.Validate(context.Background()); fe != nil {
				t.Fatal(fe)
			}
			var d *url.URL
			if src.Spec.Delivery != nil && src.Spec.Delivery.DeadLetterSink != nil {
				d = dls
			}
			env, err := EnvFromSource(src, sink, d, "")
			if err != nil {
				t.Fatal(err)
			}
			vals := map[string]string{}
			for _, e := range env {
				switch {
				case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
					r := e.ValueFrom.SecretKeyRef
					v, ok := secrets[r.Name+"/"+r.Key]
					if !ok {
						t.Fatalf("%s refers to an unknown secret key %s/%s", e.Name, r.Name, r.Key)
					}
					vals[e.Name] = v
				case e.ValueFrom != nil:
					t.Fatalf("%s: unexpected valueFrom %+v", e.Name, e.ValueFrom)
				default:
					vals[e.Name] = e.Value
				}
			}
			fromEnv, err := ConfigFromEnv(func(k string) string { return vals[k] })
			if err != nil {
				t.Fatalf("ConfigFromEnv(%v): %v", vals, err)
			}
			var creds Credentials
			switch {
			case src.Spec.AccessToken != nil:
				creds, _ = CredentialsFromAccessToken([]byte(secrets["legacy/token"]))
			case src.Spec.AccessKey != nil:
				creds = Credentials{AccessKey: "AK", SecretKey: "SK"}
			}
			want, err := ConfigFromSource(src, sink, d, creds)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fromEnv, want) {
				t.Errorf("config from the environment differs:\n got %+v\nwant %+v\nenv %v", fromEnv, want, vals)
			}
		})
	}
}
