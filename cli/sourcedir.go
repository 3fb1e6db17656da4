package cli

import (
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// SourceDirAnnotation records where `tide apply` ran, so the server resolves ko:// import paths there, as
// `ko apply` resolves them in its working directory. It must match serving/runtime.SourceDirAnnotation.
const SourceDirAnnotation = "tide.dev/source-dir"

// annotateSourceDir adds SourceDirAnnotation to Services and Configurations whose template uses a ko:// image
// (unless the manifest sets it). Other objects are left alone, so applying them from another directory changes
// nothing.
func annotateSourceDir(obj *unstructured.Unstructured) {
	if obj == nil || !strings.HasPrefix(obj.GetAPIVersion(), "serving.knative.dev/") {
		return
	}
	if k := obj.GetKind(); k != "Service" && k != "Configuration" {
		return
	}
	containers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
	ko := false
	for _, c := range containers {
		if m, ok := c.(map[string]any); ok {
			if img, _ := m["image"].(string); strings.HasPrefix(img, "ko://") {
				ko = true
			}
		}
	}
	if !ko {
		return
	}
	anns := obj.GetAnnotations()
	if anns[SourceDirAnnotation] != "" {
		return
	}
	wd, err := os.Getwd()
	if err != nil {
		return
	}
	if anns == nil {
		anns = map[string]string{}
	}
	anns[SourceDirAnnotation] = wd
	obj.SetAnnotations(anns)
}
