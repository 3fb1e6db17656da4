package fooddelivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	autoscalerconfig "knative.dev/serving/pkg/autoscaler/config"
	"sigs.k8s.io/yaml"

	sourcesv1alpha1 "github.com/tide-run/tide/apis/sources/v1alpha1"
	foodbundle "github.com/tide-run/tide/examples/food-delivery"
)

// knativeObject is what the upstream Knative API types implement: defaulting then validation, as the cluster's
// admission webhooks run them.
type knativeObject interface {
	apis.Defaultable
	apis.Validatable
}

// decodeStrict decodes one YAML document the way a strict API server would: unknown or duplicate fields are errors.
func decodeStrict(t *testing.T, name string, doc []byte, into any) {
	t.Helper()
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		t.Fatalf("%s: YAML: %v", name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s: strict decode into %T: %v", name, into, err)
	}
}

// documents splits a file into its YAML documents, dropping empty ones.
func documents(b []byte) [][]byte {
	var out [][]byte
	for _, d := range strings.Split("\n"+string(b), "\n---") {
		if strings.TrimSpace(stripComments(d)) != "" {
			out = append(out, []byte(d))
		}
	}
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

func TestBundleHasTheSeedFiles(t *testing.T) {
	var onDisk []string
	if err := fs.WalkDir(foodbundle.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(p, "demo/") {
			onDisk = append(onDisk, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(foodbundle.Files()))
	if !slices.Equal(onDisk, want) {
		t.Fatalf("bundle files = %v, want the seed's %v", onDisk, want)
	}
}

// The demo's autoscaler settings must be what Knative's config-autoscaler accepts and must let a revision reach
// zero within a compressed day's valley: stable window (the Service's 6 s) + grace period well under 15 s.
func TestDemoAutoscalerConfig(t *testing.T) {
	for _, name := range foodbundle.DemoFiles() {
		raw, err := foodbundle.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		var cm corev1.ConfigMap
		decodeStrict(t, name, raw, &cm)
		if cm.Name != "config-autoscaler" || cm.Namespace != "knative-serving" {
			t.Fatalf("%s: %s/%s, want knative-serving/config-autoscaler", name, cm.Namespace, cm.Name)
		}
		cfg, err := autoscalerconfig.NewConfigFromMap(cm.Data)
		if err != nil {
			t.Fatalf("%s: Knative rejects it: %v", name, err)
		}
		if idle := 6*time.Second + cfg.ScaleToZeroGracePeriod; idle > 12*time.Second {
			t.Fatalf("%s: idle to zero takes %v, too long for a 3-minute day's valleys", name, idle)
		}
	}
}

func TestKnativeDocumentsValidateWithUpstreamTypes(t *testing.T) {
	ctx := context.Background()
	kinds := map[string]int{}
	for _, name := range foodbundle.Files() {
		raw, err := foodbundle.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range documents(raw) {
			var tm typeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			key := tm.APIVersion + "/" + tm.Kind
			kinds[key]++
			var obj knativeObject
			switch key {
			case "serving.knative.dev/v1/Service":
				obj = &servingv1.Service{}
			case "eventing.knative.dev/v1/Broker":
				obj = &eventingv1.Broker{}
			case "eventing.knative.dev/v1/Trigger":
				obj = &eventingv1.Trigger{}
			case "v1/ServiceAccount":
				decodeStrict(t, name, doc, &corev1.ServiceAccount{})
				continue
			case "v1/Secret":
				var s corev1.Secret
				decodeStrict(t, name, doc, &s)
				for _, k := range []string{"accessKey", "secretKey"} {
					if s.StringData[k] == "" {
						t.Errorf("%s: stringData.%s missing (the RocketMQSource refers to it)", name, k)
					}
				}
				continue
			case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
				decodeStrict(t, name, doc, &rbacv1.ClusterRoleBinding{})
				continue
			case "sources.knative.dev/v1alpha1/RocketMQSource":
				checkRocketMQSource(t, name, doc)
				continue
			default:
				t.Fatalf("%s: unexpected kind %s", name, key)
			}
			decodeStrict(t, name, doc, obj)
			obj.SetDefaults(ctx)
			if errs := obj.Validate(ctx); errs != nil {
				if e := errs.Filter(apis.ErrorLevel); e != nil {
					t.Errorf("%s: %s does not validate: %v", name, key, e)
				}
			}
		}
	}
	for _, k := range []string{"serving.knative.dev/v1/Service", "eventing.knative.dev/v1/Broker",
		"eventing.knative.dev/v1/Trigger", "sources.knative.dev/v1alpha1/RocketMQSource"} {
		if kinds[k] != 1 {
			t.Errorf("bundle has %d of %s, want 1", kinds[k], k)
		}
	}
}

// The checks above must be able to fail: a broken copy of each Knative document is rejected by the same path.
func TestBrokenDocumentsAreRejectedUpstream(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		file, from, to string
		obj            knativeObject
		wantField      string
	}{
		{"ksvc-order-service.yaml", "containerConcurrency: 4", "containerConcurrency: 5000", &servingv1.Service{}, "containerConcurrency"},
		{"trigger.yaml", "broker: default", "broker: \"\"", &eventingv1.Trigger{}, "spec.broker"},
		{"trigger.yaml", "backoffDelay: PT0.2S", "backoffDelay: soon", &eventingv1.Trigger{}, "backoffDelay"},
		{"broker.yaml", "retry: 5", "retry: -1", &eventingv1.Broker{}, "retry"},
	}
	for _, c := range cases {
		raw, err := foodbundle.Read(c.file)
		if err != nil {
			t.Fatal(err)
		}
		broken := bytes.Replace(raw, []byte(c.from), []byte(c.to), 1)
		if bytes.Equal(broken, raw) {
			t.Fatalf("%s: %q not found; update the test", c.file, c.from)
		}
		decodeStrict(t, c.file, broken, c.obj)
		c.obj.SetDefaults(ctx)
		errs := c.obj.Validate(ctx).Filter(apis.ErrorLevel)
		if errs == nil || !strings.Contains(errs.Error(), c.wantField) {
			t.Errorf("%s with %q: validation = %v, want an error naming %s", c.file, c.to, errs, c.wantField)
		}
	}
}

func TestOrderServiceImageIsTheKoPath(t *testing.T) {
	raw, err := foodbundle.Read("ksvc-order-service.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var svc servingv1.Service
	decodeStrict(t, "ksvc-order-service.yaml", raw, &svc)
	if got := svc.Spec.Template.Spec.Containers[0].Image; got != foodbundle.OrderServiceImage {
		t.Fatalf("image = %q, want %q", got, foodbundle.OrderServiceImage)
	}
}

// The service must be able to scale to zero and need several instances at a peak.
func TestOrderServiceAutoscalingShape(t *testing.T) {
	raw, err := foodbundle.Read("ksvc-order-service.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var svc servingv1.Service
	decodeStrict(t, "ksvc-order-service.yaml", raw, &svc)
	ann := svc.Spec.Template.Annotations
	if ann["autoscaling.knative.dev/min-scale"] != "0" {
		t.Errorf("min-scale = %q, want 0 (scale to zero between meals)", ann["autoscaling.knative.dev/min-scale"])
	}
	if ann["autoscaling.knative.dev/max-scale"] == "" {
		t.Error("max-scale missing")
	}
	cc := svc.Spec.Template.Spec.ContainerConcurrency
	if cc == nil || *cc <= 0 || *cc > 10 {
		t.Errorf("containerConcurrency = %v, want a small positive limit so peaks need several instances", cc)
	}
}

// checkRocketMQSource validates the source with tide's own RocketMQSource type (apis/sources/v1alpha1, the spec
// of issue 4): strict decoding, defaults with the platform's name server injected (the bundle leaves nameServers out
// so tide uses its embedded broker), validation; then pins the fields the demo relies on.
func checkRocketMQSource(t *testing.T, name string, doc []byte) {
	t.Helper()
	src, err := sourcesv1alpha1.Decode(doc)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	ctx := sourcesv1alpha1.WithDefaultNameServers(context.Background(), []string{"127.0.0.1:9876"})
	src.SetDefaults(ctx)
	if errs := src.Validate(ctx).Filter(apis.ErrorLevel); errs != nil {
		t.Errorf("%s: RocketMQSource does not validate: %v", name, errs)
	}
	s := src.Spec
	if s.Topic != "orders" {
		t.Errorf("%s: spec.topic = %q, want orders", name, s.Topic)
	}
	if r := s.Sink.Ref; r == nil || r.Kind != "Broker" || r.Name != "default" || r.APIVersion != "eventing.knative.dev/v1" {
		t.Errorf("%s: spec.sink.ref = %+v, want the Broker default", name, s.Sink.Ref)
	}
	if s.InitialOffset != "earliest" {
		t.Errorf("%s: spec.initialOffset = %q, want earliest (orders sent before the source starts count)", name, s.InitialOffset)
	}
	if s.AccessKey == nil || s.SecretKey == nil || s.AccessKey.SecretKeyRef.Name != "rocketmq-credentials" ||
		s.SecretKey.SecretKeyRef.Name != "rocketmq-credentials" {
		t.Errorf("%s: credentials must refer to the Secret rocketmq-credentials", name)
	}
	// Without a platform default the same document must fail on nameServers: the validation above is real.
	bare, err := sourcesv1alpha1.Decode(doc)
	if err != nil {
		t.Fatal(err)
	}
	bare.SetDefaults(context.Background())
	if errs := bare.Validate(context.Background()).Filter(apis.ErrorLevel); errs == nil || !strings.Contains(errs.Error(), "nameServers") {
		t.Errorf("%s: without a default name server validation = %v, want an error naming nameServers", name, errs)
	}
}
