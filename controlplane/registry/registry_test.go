package registry

import (
	"context"
	"errors"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func prepare(t *testing.T, doc string) (*Prepared, error) {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return NewDefault().Prepare(context.Background(), js, "", nil)
}

func TestPrepareServiceDefaults(t *testing.T) {
	p, err := prepare(t, `
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: hello}
spec:
  template:
    spec:
      containers:
      - image: example.com/hello
`)
	if err != nil {
		t.Fatal(err)
	}
	if p.Object.GetNamespace() != "default" {
		t.Errorf("namespace %q", p.Object.GetNamespace())
	}
	spec := p.Object.Object["spec"].(map[string]any)
	tmpl := spec["template"].(map[string]any)["spec"].(map[string]any)
	if tmpl["timeoutSeconds"] == nil {
		t.Errorf("timeoutSeconds not defaulted: %v", tmpl)
	}
	if spec["traffic"] == nil {
		t.Errorf("traffic not defaulted: %v", spec)
	}
	if _, ok := p.Object.Object["status"]; ok {
		t.Errorf("empty status kept")
	}
	if len(p.Warnings) != 0 {
		t.Errorf("warnings %v", p.Warnings)
	}
}

func TestPrepareErrors(t *testing.T) {
	cases := []struct {
		name, doc, wantField string
		unknown              bool
	}{
		{"containerConcurrency", `
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: hello}
spec:
  template:
    spec:
      containerConcurrency: -1
      containers: [{image: x}]
`, "spec.template.spec.containerConcurrency", false},
		{"unknown field", `
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: hello}
spec:
  template:
    spec:
      bogus: 1
      containers: [{image: x}]
`, "spec.template.spec.bogus", false},
		{"trigger without subscriber", `
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: t}
spec:
  broker: default
`, "spec.subscriber", false},
		{"missing name", `
apiVersion: v1
kind: ConfigMap
metadata: {}
`, "metadata.name", false},
		{"unknown kind", `
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
`, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := prepare(t, c.doc)
			if err == nil {
				t.Fatal("no error")
			}
			if c.unknown {
				if !errors.Is(err, ErrUnknownKind) {
					t.Fatalf("err %v", err)
				}
				return
			}
			var ie *InvalidError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err %T %v", err, err)
			}
			found := false
			for _, cause := range ie.Causes {
				if strings.HasPrefix(cause.Field, c.wantField) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no cause at %s: %v", c.wantField, err)
			}
		})
	}
}

func TestPrepareNotActedOnWarns(t *testing.T) {
	p, err := prepare(t, `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: b, namespace: ignored}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{kind: ServiceAccount, name: sa, namespace: default}]
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Warnings) != 1 || p.Object.GetNamespace() != "" {
		t.Fatalf("warnings %v namespace %q", p.Warnings, p.Object.GetNamespace())
	}
}

func TestSecretStringData(t *testing.T) {
	p, err := prepare(t, `
apiVersion: v1
kind: Secret
metadata: {name: s, namespace: apps}
stringData: {token: abc}
`)
	if err != nil {
		t.Fatal(err)
	}
	data := p.Object.Object["data"].(map[string]any)
	if data["token"] != "YWJj" || p.Object.Object["stringData"] != nil || p.Object.GetNamespace() != "apps" {
		t.Fatalf("%v", p.Object.Object)
	}
}

func TestResolve(t *testing.T) {
	r := NewDefault()
	for name, want := range map[string]string{"ksvc": "Service", "rev": "Revision", "rt": "Route", "cfg": "Configuration",
		"cm": "ConfigMap", "rocketmqsource": "RocketMQSource", "Trigger": "Trigger", "brokers": "Broker", "secret": "Secret",
		"services.serving.knative.dev": "Service"} {
		got := r.Resolve(name)
		if len(got) == 0 || got[0].Kind != want {
			t.Errorf("%s -> %v", name, got)
		}
	}
}
