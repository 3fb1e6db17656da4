package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

// FuzzPrepare feeds arbitrary request bodies (what the API receives from the network) to Prepare: it must never
// panic, and whatever it accepts must be a fixed point (preparing the stored form again yields the same object),
// which is what makes re-applying an unchanged manifest a no-op.
func FuzzPrepare(f *testing.F) {
	for _, s := range []string{
		`{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"a"},"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}`,
		`{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"a"},"spec":{"template":{"spec":{"containerConcurrency":-1,"containers":[{"image":"x"}]}}}}`,
		`{"apiVersion":"eventing.knative.dev/v1","kind":"Trigger","metadata":{"name":"t"},"spec":{"broker":"default","subscriber":{"uri":"http://x"}}}`,
		`{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","metadata":{"name":"default"}}`,
		`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"stringData":{"a":"b"}}`,
		`{"apiVersion":"sources.knative.dev/v1alpha1","kind":"RocketMQSource","metadata":{"name":"r"},"spec":{"topic":"t"}}`,
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"b"},"data":{}}`,
		`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n","namespace":"x"}}`,
		`{}`, `[]`, `null`, `{"kind":1}`,
	} {
		f.Add([]byte(s))
	}
	reg := NewDefault()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := reg.Prepare(context.Background(), data, "", nil)
		if err != nil {
			return
		}
		if p.Object.GetName() == "" {
			t.Fatalf("accepted an object without a name: %s", data)
		}
		b, err := json.Marshal(p.Object.Object)
		if err != nil {
			t.Fatal(err)
		}
		again, err := reg.Prepare(context.Background(), b, "", p.Object)
		if err != nil {
			t.Fatalf("prepared object rejected on re-apply: %v\n%s", err, b)
		}
		b2, _ := json.Marshal(again.Object.Object)
		if !bytes.Equal(b, b2) {
			t.Fatalf("not a fixed point:\n%s\n%s", b, b2)
		}
	})
}
