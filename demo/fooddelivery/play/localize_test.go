package play

import (
	"bytes"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/client"
	foodbundle "github.com/tide-run/tide/examples/food-delivery"
)

func TestLocalizeOrderService(t *testing.T) {
	b, err := foodbundle.Read("ksvc-order-service.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := client.ReadManifests([]string{"-"}, bytes.NewReader(b))
	if err != nil || len(docs) != 1 || docs[0].Err != nil {
		t.Fatalf("%v %v", err, docs)
	}
	obj := docs[0].Object
	// Twice: an ORDER_DB already there is replaced, not duplicated.
	for i := 0; i < 2; i++ {
		if err := localizeOrderService(obj, "/src", "/out/orders.db"); err != nil {
			t.Fatal(err)
		}
	}
	if got := obj.GetAnnotations()[sourceDirAnnotaton]; got != "/src" {
		t.Fatalf("source dir annotation %q", got)
	}
	containers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
	env := containers[0].(map[string]any)["env"].([]any)
	var dbs []string
	workKept := false
	for _, e := range env {
		m := e.(map[string]any)
		switch m["name"] {
		case "ORDER_DB":
			dbs = append(dbs, m["value"].(string))
		case "ORDER_WORK_MS":
			workKept = true
		}
	}
	if len(dbs) != 1 || dbs[0] != "/out/orders.db" || !workKept {
		t.Fatalf("env %v", env)
	}
}
