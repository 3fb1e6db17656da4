package barrage_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	barragebundle "github.com/tide-run/tide/examples/barrage"
)

// TestSeedYAMLOnlyImagesChanged: the two Services are seed 003's YAML with only their image lines changed, to the
// ko:// paths of this directory's programs.
func TestSeedYAMLOnlyImagesChanged(t *testing.T) {
	for file, image := range map[string]string{
		"ksvc-barrage-process.yaml": barragebundle.ProcessorImage,
		"ksvc-demo-barrage.yaml":    barragebundle.HomePageImage,
	} {
		ours := decode(t, mustRead(t, file))
		seed := decode(t, mustReadFile(t, filepath.Join("testdata", "seed-"+file)))
		c := ours["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
		sc := seed["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
		if c["image"] != image || strings.HasPrefix(sc["image"].(string), "ko://") {
			t.Errorf("%s: image %v (seed %v), want %s", file, c["image"], sc["image"], image)
		}
		c["image"] = sc["image"]
		if !reflect.DeepEqual(ours, seed) {
			t.Errorf("%s differs from the seed beyond its image line", file)
		}
		// The programs exist where the image points.
		dir := strings.TrimPrefix(image, "ko://github.com/tide-run/tide/examples/barrage/")
		if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
			t.Errorf("%s: %v", image, err)
		}
	}
	for _, f := range append(append(barragebundle.DemoFiles(), barragebundle.Files()...), barragebundle.KafkaFiles()...) {
		if len(mustRead(t, f)) == 0 {
			t.Errorf("%s is empty", f)
		}
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := barragebundle.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.UnmarshalStrict(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
