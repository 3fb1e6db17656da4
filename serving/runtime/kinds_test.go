package runtime_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/tide-run/tide/controlplane/registry"
	"github.com/tide-run/tide/serving/runtime"
)

func prepare(t *testing.T, reg *registry.Registry, doc string) error {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	_, err = reg.Prepare(context.Background(), j, "default", nil)
	return err
}

// TestRegisterKindsRefusesRegistryImages: a Service, Configuration or Revision whose container is a registry image
// (no command) is refused at apply time, naming the field and the fix; a ko:// image or a command is accepted.
func TestRegisterKindsRefusesRegistryImages(t *testing.T) {
	reg := registry.NewDefault()
	if err := runtime.RegisterKinds(reg); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ kind, prefix, path string }{
		{"Service", "spec:\n  template:\n    spec:\n", "spec.template.spec.containers[0].image"},
		{"Configuration", "spec:\n  template:\n    spec:\n", "spec.template.spec.containers[0].image"},
		{"Revision", "spec:\n", "spec.containers[0].image"},
	} {
		indent := strings.Repeat(" ", strings.Count(tc.prefix, "\n")*2)
		doc := func(container string) string {
			return "apiVersion: serving.knative.dev/v1\nkind: " + tc.kind + "\nmetadata:\n  name: x\n" + tc.prefix +
				indent + "containers:\n" + indent + "  - " + container + "\n"
		}
		err := prepare(t, reg, doc("image: registry.cn-shanghai.aliyuncs.com/knative-sample/barrage-main:v1"))
		var ie *registry.InvalidError
		if !errors.As(err, &ie) {
			t.Fatalf("%s with a registry image: err %v, want an InvalidError", tc.kind, err)
		}
		if len(ie.Causes) != 1 || ie.Causes[0].Field != tc.path || !strings.Contains(ie.Causes[0].Message, "ko://") ||
			!strings.Contains(ie.Causes[0].Message, "command") {
			t.Errorf("%s: causes %+v, want one at %s naming ko:// and command", tc.kind, ie.Causes, tc.path)
		}
		if err := prepare(t, reg, doc("image: ko://example.com/app")); err != nil {
			t.Errorf("%s with a ko:// image: %v", tc.kind, err)
		}
		if err := prepare(t, reg, doc("image: docker.io/library/busybox\n"+indent+"    command: [sleep]")); err != nil {
			t.Errorf("%s with a command: %v", tc.kind, err)
		}
	}
}

// TestSeedBarrageYAMLAccepted: seed 003's two Services, with only their image lines changed, apply (fieldRef env,
// args, ports, serviceAccountName, the old minScale/maxScale spellings); an unsupported fieldPath is refused.
func TestSeedBarrageYAMLAccepted(t *testing.T) {
	reg := registry.NewDefault()
	if err := runtime.RegisterKinds(reg); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ksvc-barrage-process.yaml", "ksvc-demo-barrage.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "barrage", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := prepare(t, reg, string(b)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	bad := `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: x
spec:
  template:
    spec:
      containers:
        - image: ko://example.com/app
          env:
            - name: X
              valueFrom:
                fieldRef:
                  fieldPath: status.phase
`
	err := prepare(t, reg, bad)
	if err == nil || !strings.Contains(err.Error(), "spec.template.spec.containers[0].env[0].valueFrom.fieldRef") ||
		!strings.Contains(err.Error(), "metadata.name") {
		t.Errorf("fieldPath status.phase: err %v, want a refusal naming the field and the supported paths", err)
	}
}
