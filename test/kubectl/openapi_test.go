package kubectl_test

import (
	"strings"
	"testing"

	"github.com/tide-run/tide/server"
)

const badService = `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: typo
spec:
  template:
    spec:
      containers:
      - image: ko://example.com/hello
        bogus: 1
`

// TestOpenAPIValidationAndExplain: kubectl downloads tide's OpenAPI (v2 protobuf for its validator, v3 for explain
// and the field-validation check), validates documents itself and reports an unknown field as against a cluster,
// before anything is sent; `kubectl explain` reads the same schemas.
func TestOpenAPIValidationAndExplain(t *testing.T) {
	t.Parallel()
	k := startTide(t, server.Options{})
	errOut := k.fails(badService, "apply", "-f", "-")
	if !strings.Contains(errOut, `unknown field "bogus"`) {
		t.Errorf("apply of an unknown field: want kubectl's unknown-field error, got:\n%s", errOut)
	}
	if out, _, _ := k.run("", "get", "ksvc", "typo", "-o", "name"); out != "" {
		t.Errorf("the invalid Service was created: %s", out)
	}
	out := k.ok("explain", "ksvc.spec.template.spec.containerConcurrency")
	if !strings.Contains(out, "containerConcurrency") || !strings.Contains(out, "<integer>") {
		t.Errorf("explain ksvc.spec.template.spec.containerConcurrency:\n%s", out)
	}
	out = k.ok("explain", "rocketmqsources.spec")
	for _, f := range []string{"topic", "consumerGroup", "sink"} {
		if !strings.Contains(out, f) {
			t.Errorf("explain rocketmqsources.spec has no %s:\n%s", f, out)
		}
	}
	// --validate=false sends the document; tide's own strict decoding still refuses the unknown field.
	errOut = k.fails(badService, "apply", "--validate=false", "-f", "-")
	if !strings.Contains(errOut, "bogus") {
		t.Errorf("apply --validate=false: %s", errOut)
	}
}
