package process

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// The downward API for env (valueFrom.fieldRef and valueFrom.resourceFieldRef), as Kubernetes fills it for a pod
// and Knative allows it with the kubernetes.podspec-fieldref feature. An instance is tide's pod: its name is the
// instance's slot ID (unique among the revision's running instances), its IPs are the loopback address the gateway
// reaches it on, its node is this machine.

// podFields are the pod's values the downward API exposes, for one instance.
type podFields struct {
	name string // metadata.name: the instance ID
}

// fieldRefValue resolves a fieldRef path for the instance. The paths are the ones Kubernetes accepts for env.
func (s *Spec) fieldRefValue(ref *corev1.ObjectFieldSelector, pod podFields) (string, error) {
	path := ref.FieldPath
	if v := ref.APIVersion; v != "" && v != "v1" {
		return "", fmt.Errorf("apiVersion %q: only v1 is supported", v)
	}
	switch path {
	case "metadata.name":
		return pod.name, nil
	case "metadata.namespace":
		return s.Namespace, nil
	case "metadata.uid":
		return s.UID, nil
	case "spec.nodeName":
		h, err := os.Hostname()
		if err != nil {
			return "localhost", nil
		}
		return h, nil
	case "spec.serviceAccountName":
		if sa := s.RevisionSpec.ServiceAccountName; sa != "" {
			return sa, nil
		}
		return "default", nil
	case "status.podIP", "status.podIPs", "status.hostIP", "status.hostIPs":
		return "127.0.0.1", nil
	}
	for _, p := range []struct {
		prefix string
		m      map[string]string
	}{{"metadata.labels", s.Labels}, {"metadata.annotations", s.Annotations}} {
		if key, ok := subscript(path, p.prefix); ok {
			return p.m[key], nil
		}
	}
	return "", fmt.Errorf("fieldPath %q is not supported: use metadata.name, metadata.namespace, metadata.uid, "+
		"metadata.labels['KEY'], metadata.annotations['KEY'], spec.nodeName, spec.serviceAccountName, status.podIP, "+
		"status.podIPs, status.hostIP or status.hostIPs", path)
}

// subscript parses prefix['key'] (Kubernetes' syntax for one label or annotation).
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok {
		return "", false
	}
	key, ok := strings.CutSuffix(rest, "']")
	return key, ok && key != ""
}

// resourceFieldRefValue resolves limits.cpu, limits.memory, requests.cpu, requests.memory (and the
// ephemeral-storage ones) from the container's resources. As Kubernetes does, an unset limit is the node's
// capacity (here: this machine's CPUs and memory) and an unset request is the limit when set, else zero; the value is
// divided by the divisor (default 1) and rounded up.
func resourceFieldRefValue(c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	if ref.ContainerName != "" && ref.ContainerName != c.Name {
		return "", fmt.Errorf("containerName %q: tide runs one container (%q)", ref.ContainerName, c.Name)
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("resource %q is not supported: use limits.cpu, limits.memory, requests.cpu or requests.memory", ref.Resource)
	}
	rn := corev1.ResourceName(name)
	if rn != corev1.ResourceCPU && rn != corev1.ResourceMemory && rn != corev1.ResourceEphemeralStorage {
		return "", fmt.Errorf("resource %q is not supported: use limits.cpu, limits.memory, requests.cpu or requests.memory", ref.Resource)
	}
	q, set := c.Resources.Limits[rn]
	if kind == "requests" {
		if r, ok := c.Resources.Requests[rn]; ok {
			q, set = r, true
		} else if !set {
			q, set = resource.Quantity{}, true
		}
	}
	if !set {
		q = nodeCapacity(rn)
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	// Kubernetes: ceil(value / divisor), computed in milli-units so that cpu "500m" / "1m" is exact.
	v := (q.MilliValue() + divisor.MilliValue() - 1) / divisor.MilliValue()
	return strconv.FormatInt(v, 10), nil
}

// nodeCapacity is this machine's capacity for a resource with no limit.
func nodeCapacity(rn corev1.ResourceName) resource.Quantity {
	switch rn {
	case corev1.ResourceCPU:
		return *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI)
	case corev1.ResourceMemory:
		if b, err := os.ReadFile("/proc/meminfo"); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
					if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
						return *resource.NewQuantity(kb*1024, resource.BinarySI)
					}
				}
			}
		}
	}
	return resource.Quantity{}
}
