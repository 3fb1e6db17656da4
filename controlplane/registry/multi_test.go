package registry

import (
	"errors"
	"strings"
	"testing"
)

// TestPrepareReportsEveryProblem: an unknown field does not hide the validation errors after it, and a bad name is
// reported beside them; the message lists them all in Kubernetes' aggregate shape ("[a, b]").
func TestPrepareReportsEveryProblem(t *testing.T) {
	_, err := prepare(t, `
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: Bad_Name}
spec:
  bogus: 1
  broker: default
`)
	var ie *InvalidError
	if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("err %T %v", err, err)
	}
	want := []string{"metadata.name", "spec.bogus", "spec.subscriber"}
	var got []string
	for _, c := range ie.Causes {
		got = append(got, c.Field)
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, w)
		}
		if !found {
			t.Errorf("no cause at %s; causes %v", w, got)
		}
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, `Trigger "Bad_Name" is invalid: [`) || !strings.HasSuffix(msg, "]") ||
		!strings.Contains(msg, "spec.bogus: unknown field, ") {
		t.Errorf("message %q: want every cause in Kubernetes' aggregate shape", msg)
	}

	// One problem: no brackets, as Kubernetes prints a single error.
	_, err = prepare(t, `
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: hello}
spec:
  template:
    spec:
      containerConcurrency: -1
      containers: [{image: example.com/hello}]
`)
	if err == nil || err.Error() != `Service "hello" is invalid: spec.template.spec.containerConcurrency: expected 0 <= -1 <= 1000` {
		t.Errorf("single cause: %v", err)
	}
}
