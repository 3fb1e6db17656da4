package kubectl_test

import (
	"strings"
	"testing"

	"github.com/tide-run/tide/server"
)

// TestOpenAPIValidationAndExplain: kubectl downloads tide's OpenAPI (v2 protobuf, v3 for explain and the
// field-validation check: the PATCH operations list fieldValidation, so kubectl leaves unknown fields to the
// server, TestFieldValidation); `kubectl explain` reads the same schemas.
func TestOpenAPIValidationAndExplain(t *testing.T) {
	t.Parallel()
	k := startTide(t, server.Options{})
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
}
