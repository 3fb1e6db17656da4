package v1alpha1

import (
	"context"
	"os"
	"testing"
)

// FuzzDecode: manifests arrive over the API; decoding, defaulting and validating arbitrary bytes must not panic,
// and whatever validates must survive a deep copy unchanged.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"testdata/full.yaml", "testdata/legacy-2020.yaml"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("apiVersion: sources.knative.dev/v1alpha1\nkind: RocketMQSource\nmetadata: {name: a}\nspec: {topic: t, sink: {uri: 'http://x'}}"))
	f.Add([]byte(`{"apiVersion":"sources.eventing.knative.dev/v1alpha1","kind":"RocketMQSource","spec":{"namesrvAddr":";;"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if err != nil {
			return
		}
		ctx := WithDefaultNameServers(context.Background(), []string{"127.0.0.1:9876"})
		s.SetDefaults(ctx)
		if s.Validate(ctx) == nil {
			c := s.DeepCopy()
			if c.Spec.ConsumerGroup != s.Spec.ConsumerGroup || len(c.Spec.AllTopics()) != len(s.Spec.AllTopics()) {
				t.Fatal("deep copy differs")
			}
		}
	})
}
