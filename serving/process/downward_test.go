package process

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// TestDownwardAPIEnv: env valueFrom.fieldRef and resourceFieldRef get the instance's pod values.
func TestDownwardAPIEnv(t *testing.T) {
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	res := func(name, r, div string) corev1.EnvVar {
		sel := &corev1.ResourceFieldSelector{Resource: r}
		if div != "" {
			sel.Divisor = resource.MustParse(div)
		}
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: sel}}
	}
	c := corev1.Container{Image: "ko://example.com/app", Env: []corev1.EnvVar{
		field("POD_NAME", "metadata.name"),
		field("POD_NAMESPACE", "metadata.namespace"),
		field("POD_UID", "metadata.uid"),
		field("ROLE", "metadata.labels['danmu.role']"),
		field("NOTE", "metadata.annotations['note']"),
		field("SA", "spec.serviceAccountName"),
		field("IP", "status.podIP"),
		{Name: "SELF", Value: "$(POD_NAME)@$(POD_NAMESPACE)"},
		res("CPU_LIMIT_M", "limits.cpu", "1m"),
		res("MEM_REQ", "requests.memory", ""),
		res("CPUS", "limits.cpu", ""),
	}}
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}
	s := &Spec{Namespace: "ns1", Revision: "r-00001", UID: "u-1",
		Labels:      map[string]string{"danmu.role": "manager"},
		Annotations: map[string]string{"note": "hi"},
		RevisionSpec: servingv1.RevisionSpec{PodSpec: corev1.PodSpec{ServiceAccountName: "barrage-install-sa",
			Containers: []corev1.Container{c}}}}
	if _, err := s.container(); err != nil {
		t.Fatalf("container: %v", err)
	}
	_, vals, err := s.buildEnv(context.Background(), &s.RevisionSpec.Containers[0], nil, 8000, nil, podFields{name: "r-00001-3"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"POD_NAME": "r-00001-3", "POD_NAMESPACE": "ns1", "POD_UID": "u-1", "ROLE": "manager",
		"NOTE": "hi", "SA": "barrage-install-sa", "IP": "127.0.0.1", "SELF": "r-00001-3@ns1", "CPU_LIMIT_M": "500",
		"MEM_REQ": "0", "CPUS": "1"}
	for k, v := range want {
		if vals[k] != v {
			t.Errorf("%s = %q, want %q", k, vals[k], v)
		}
	}
	// Without a limit the node's capacity is the limit.
	s.RevisionSpec.Containers[0].Resources.Limits = nil
	_, vals, err = s.buildEnv(context.Background(), &s.RevisionSpec.Containers[0], nil, 8000, nil, podFields{name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if vals["CPUS"] != strconv.Itoa(runtime.NumCPU()) {
		t.Errorf("CPUS without a limit = %q, want %d", vals["CPUS"], runtime.NumCPU())
	}
	// Unsupported paths are refused by the spec check, naming the field.
	s.RevisionSpec.Containers[0].Env = []corev1.EnvVar{field("X", "status.phase")}
	if _, err := s.container(); err == nil || !strings.Contains(err.Error(), "env[0].valueFrom.fieldRef") {
		t.Errorf("status.phase: err %v", err)
	}
	s.RevisionSpec.Containers[0].Env = []corev1.EnvVar{res("X", "limits.gpu", "")}
	if _, err := s.container(); err == nil || !strings.Contains(err.Error(), "env[0].valueFrom.resourceFieldRef") {
		t.Errorf("limits.gpu: err %v", err)
	}
}
