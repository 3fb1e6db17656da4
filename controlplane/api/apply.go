package api

import (
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/tide-run/tide/controlplane/registry"
)

// Strategic merge patch is defined by the Go struct tags (patchStrategy, patchMergeKey) of Kubernetes' own types;
// as on a cluster it applies to the kinds tide decodes with a k8s.io/api type (Secret, ConfigMap, ServiceAccount,
// Namespace, Event, RBAC) and is refused (415) for custom kinds, which take merge and JSON patches. kubectl
// chooses by the PATCH operation's consumes list in /openapi/v2, which says the same (openapi.go).

// strategicKind reports whether k's documents are Kubernetes built-in types (strategic merge patch applies).
func strategicKind(k registry.Kind) bool {
	if k.New == nil {
		return false
	}
	t := reflect.TypeOf(k.New())
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return strings.HasPrefix(t.PkgPath(), "k8s.io/api/")
}

// strategicMerge applies a strategic merge patch to cur (JSON of the stored object) with k's Go type's tags.
func strategicMerge(k registry.Kind, cur, patch []byte) ([]byte, error) {
	return strategicpatch.StrategicMergePatch(cur, patch, k.New())
}

// patchTypes are the patch media types PATCH accepts for k, in kubectl's order of preference.
func patchTypes(k registry.Kind) []string {
	if strategicKind(k) {
		return []string{JSONPatchType, MergePatchType, strategicPatchType, applyPatchType}
	}
	return []string{JSONPatchType, MergePatchType, applyPatchType}
}
