package kubecontroller_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
	"github.com/tide-run/tide/eventing/kubecontroller"
	"github.com/tide-run/tide/internal/kubetest"
)

var (
	crdGVR    = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	brokerGVR = schema.GroupVersionResource{Group: "eventing.knative.dev", Version: "v1", Resource: "brokers"}
)

// brokerCRD stands in for Knative Eventing's Broker CRD: Knative Eventing's controllers are not installed here, so
// the test plays the Broker controller's part and publishes status.address.url itself.
const brokerCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: brokers.eventing.knative.dev}
spec:
  group: eventing.knative.dev
  names: {kind: Broker, plural: brokers, singular: broker, listKind: BrokerList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`

const ingressURL = "http://broker-ingress.knative-eventing.svc.cluster.local/default/default"

// TestControllerOnRealAPIServer runs the controller against a real kube-apiserver (built from k8s.io/kubernetes,
// on an embedded etcd, with kube-controller-manager's garbage collector; see internal/kubetest). It installs the
// generated CRDs from deploy/knative/, applies the food-delivery bundle's RocketMQSource and Broker, and checks
// what a cluster user would see: the Deployment and its container, owner references, status conditions, updates,
// the 2020 form, and garbage collection on delete. What is not real: no kubelet runs Pods, so the test marks the
// Deployment Available itself (the deployment controller's and the kubelet's part), and the Broker's address is
// written by the test (Knative Eventing's part). Linux only (file suffix), like internal/kubetest.
func TestControllerOnRealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver and etcd (about 10 s)")
	}
	cl := kubetest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dyn := dynamic.NewForConfigOrDie(cl.Config)
	kube := kubernetes.NewForConfigOrDie(cl.Config)

	// Everything `ko apply -f deploy/knative/` installs (ko would replace the ko:// images; the API server takes
	// them as they are, and no kubelet runs the controller's Deployment here: the test runs the controller itself,
	// with the RBAC the manifests grant).
	manifests, err := filepath.Glob(filepath.Join("..", "..", "deploy", "knative", "*.yaml"))
	if err != nil || len(manifests) < 6 {
		t.Fatalf("deploy/knative/*.yaml: %v %v", manifests, err)
	}
	for _, f := range manifests {
		if !strings.HasPrefix(filepath.Base(f), ".") { // .ko.yaml is ko's configuration
			applyFile(t, ctx, dyn, f)
		}
	}
	applyYAML(t, ctx, dyn, []byte(brokerCRD))
	for _, name := range []string{"rocketmqsources.sources.knative.dev", "rocketmqsources.sources.eventing.knative.dev", "brokers.eventing.knative.dev"} {
		waitFor(t, 30*time.Second, "CRD "+name+" Established", func() (bool, string) {
			u, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return condition(u, "Established") == "True", fmt.Sprint(u.Object["status"])
		})
	}
	// The bundle as a user applies it: the Secret with the RocketMQ credentials, the ServiceAccount, the source.
	for _, f := range []string{"203-secret.yaml", "200-serviceaccount.yaml", "alirocketmqsource.yaml"} {
		applyFile(t, ctx, dyn, filepath.Join("..", "..", "examples", "food-delivery", f))
	}

	logs := &lockedWriter{w: &bytes.Buffer{}}
	// The controller runs as its ServiceAccount, so a rule missing from 201-clusterrole.yaml fails this test.
	asController := rest.CopyConfig(cl.Config)
	asController.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:tide-system:tide-rocketmqsource-controller"}
	c, err := kubecontroller.New(kubecontroller.Options{
		Config: asController, AdapterImage: "registry.example/tide:test", DefaultNameServers: []string{"10.0.0.12:9876"},
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Resync: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 2) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("controller log:\n%s", logs.String())
		}
	}()
	srcs := dyn.Resource(kubecontroller.GVR).Namespace("default")

	// No Broker yet: the source says so and nothing is deployed.
	src := waitStatus(t, ctx, srcs, "orders", "SinkProvided=False", func(u *unstructured.Unstructured) bool {
		return condition(u, "SinkProvided") == "False"
	})
	if r := conditionReason(src, "SinkProvided"); r != v1alpha1.ReasonSinkNotFound {
		t.Errorf("SinkProvided reason %q, want %s", r, v1alpha1.ReasonSinkNotFound)
	}
	if condition(src, "Ready") != "False" {
		t.Errorf("Ready is %q without a sink, want False", condition(src, "Ready"))
	}
	if _, err := kube.AppsV1().Deployments("default").Get(ctx, "orders-rocketmqsource", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a Deployment exists without a sink (err %v)", err)
	}

	// The Broker appears and publishes its address (Knative's broker controller would): the tracker wakes the
	// source, which deploys its adapter.
	applyFile(t, ctx, dyn, filepath.Join("..", "..", "examples", "food-delivery", "broker.yaml"))
	b, err := dyn.Resource(brokerGVR).Namespace("default").Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b.Object["status"] = map[string]any{"address": map[string]any{"url": ingressURL}}
	if _, err := dyn.Resource(brokerGVR).Namespace("default").UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var d *appsv1.Deployment
	waitFor(t, 30*time.Second, "the adapter Deployment", func() (bool, string) {
		d, err = kube.AppsV1().Deployments("default").Get(ctx, "orders-rocketmqsource", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	src, err = srcs.Get(ctx, "orders", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkOwner(t, d, src)
	ctr := d.Spec.Template.Spec.Containers[0]
	if ctr.Image != "registry.example/tide:test" || strings.Join(ctr.Args, " ") != "adapter rocketmq" {
		t.Errorf("container image %q args %q, want the tide image running `adapter rocketmq`", ctr.Image, ctr.Args)
	}
	env := envMap(ctr.Env)
	for k, want := range map[string]string{
		"K_SINK": ingressURL, "ROCKETMQ_TOPIC": "orders", "ROCKETMQ_CONSUMER_GROUP": "food-delivery-orders",
		"ROCKETMQ_NAME_SERVERS": "10.0.0.12:9876", "ROCKETMQ_INITIAL_OFFSET": "earliest", "ROCKETMQ_MAX_IN_FLIGHT": "64",
		"ROCKETMQ_SOURCE_NAMESPACE": "default", "ROCKETMQ_SOURCE_NAME": "orders", "ROCKETMQ_ADAPTER_HTTP_ADDR": ":8080",
		"ROCKETMQ_ACCESS_KEY": "secret rocketmq-credentials/accessKey", "ROCKETMQ_SECRET_KEY": "secret rocketmq-credentials/secretKey",
	} {
		if env[k] != want {
			t.Errorf("env %s = %q, want %q", k, env[k], want)
		}
	}
	if p := ctr.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.IntValue() != 8080 {
		t.Errorf("readiness probe %+v, want GET /healthz on 8080", p)
	}

	// Sink resolved, Deployment not yet available (no kubelet here).
	src = waitStatus(t, ctx, srcs, "orders", "SinkProvided=True", func(u *unstructured.Unstructured) bool {
		return condition(u, "SinkProvided") == "True" && condition(u, "Deployed") == "Unknown"
	})
	if got, _, _ := unstructured.NestedString(src.Object, "status", "sinkUri"); got != ingressURL {
		t.Errorf("status.sinkUri %q, want %q", got, ingressURL)
	}
	if got, _, _ := unstructured.NestedString(src.Object, "status", "consumerGroup"); got != "food-delivery-orders" {
		t.Errorf("status.consumerGroup %q", got)
	}
	if got, _, _ := unstructured.NestedInt64(src.Object, "status", "observedGeneration"); got != src.GetGeneration() {
		t.Errorf("status.observedGeneration %d, want %d", got, src.GetGeneration())
	}
	if ce, _, _ := unstructured.NestedSlice(src.Object, "status", "ceAttributes"); len(ce) != 1 ||
		ce[0].(map[string]any)["source"] != "/apis/v1/namespaces/default/rocketmqsources/orders#orders" {
		t.Errorf("status.ceAttributes %v", ce)
	}
	if condition(src, "Ready") == "True" {
		t.Error("Ready before the Deployment is available")
	}

	// The deployment controller and the kubelet would report the Pod available; the source becomes Ready.
	markAvailable(t, ctx, kube, d)
	waitStatus(t, ctx, srcs, "orders", "Ready=True", func(u *unstructured.Unstructured) bool {
		return condition(u, "Ready") == "True" && condition(u, "Deployed") == "True"
	})

	// A spec change reaches the Deployment and observedGeneration.
	src, _ = srcs.Get(ctx, "orders", metav1.GetOptions{})
	if err := unstructured.SetNestedField(src.Object, int64(8), "spec", "maxInFlight"); err != nil {
		t.Fatal(err)
	}
	if src, err = srcs.Update(ctx, src, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "ROCKETMQ_MAX_IN_FLIGHT=8 in the Deployment", func() (bool, string) {
		d, err = kube.AppsV1().Deployments("default").Get(ctx, "orders-rocketmqsource", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		v := envMap(d.Spec.Template.Spec.Containers[0].Env)["ROCKETMQ_MAX_IN_FLIGHT"]
		return v == "8", v
	})
	gen := src.GetGeneration()
	waitStatus(t, ctx, srcs, "orders", fmt.Sprintf("observedGeneration=%d", gen), func(u *unstructured.Unstructured) bool {
		g, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
		return g == gen
	})

	// An invalid spec (no webhook on a cluster to reject it) is reported, not deployed.
	applyYAML(t, ctx, dyn, []byte(`
apiVersion: sources.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: broken, namespace: default}
spec: {sink: {uri: "http://example.com/"}}
`))
	broken := waitStatus(t, ctx, srcs, "broken", "Deployed=False", func(u *unstructured.Unstructured) bool {
		return condition(u, "Deployed") == "False"
	})
	if r := conditionReason(broken, "Deployed"); r != v1alpha1.ReasonInvalidSpec || !strings.Contains(conditionMessage(broken, "Deployed"), "topic") {
		t.Errorf("invalid source: Deployed reason %q message %q, want %s naming the topic", r, conditionMessage(broken, "Deployed"), v1alpha1.ReasonInvalidSpec)
	}

	// The 2020 form (the seed's alirocketmqsource.yaml shape), with a Kubernetes Service as its sink.
	if _, err := kube.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "event-display"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, ctx, dyn, []byte(`
apiVersion: sources.eventing.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: alirocketmqsource, namespace: default}
spec:
  topic: order
  namesrvAddr: 10.0.0.1:9876;10.0.0.2:9876
  groupName: GID_order
  accessToken: {secretKeyRef: {name: alirocketmq-source-secret, key: rocketmq-credentials}}
  serviceAccountName: rocketmq-source
  sink: {apiVersion: v1, kind: Service, name: event-display}
`))
	var ld *appsv1.Deployment
	waitFor(t, 30*time.Second, "the 2020 source's Deployment", func() (bool, string) {
		ld, err = kube.AppsV1().Deployments("default").Get(ctx, "alirocketmqsource-rocketmqsource-2020", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	legacySrcs := dyn.Resource(kubecontroller.LegacyGVR).Namespace("default")
	legacy, err := legacySrcs.Get(ctx, "alirocketmqsource", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkOwner(t, ld, legacy)
	lenv := envMap(ld.Spec.Template.Spec.Containers[0].Env)
	for k, want := range map[string]string{
		"K_SINK": "http://event-display.default.svc.cluster.local/", "ROCKETMQ_NAME_SERVERS": "10.0.0.1:9876,10.0.0.2:9876",
		"ROCKETMQ_CONSUMER_GROUP": "GID_order", "ROCKETMQ_ACCESS_TOKEN": "secret alirocketmq-source-secret/rocketmq-credentials",
	} {
		if lenv[k] != want {
			t.Errorf("2020 source: env %s = %q, want %q", k, lenv[k], want)
		}
	}
	if sa := ld.Spec.Template.Spec.ServiceAccountName; sa != "rocketmq-source" {
		t.Errorf("2020 source: serviceAccountName %q, want the spec's rocketmq-source", sa)
	}
	markAvailable(t, ctx, kube, ld)
	waitStatus(t, ctx, legacySrcs, "alirocketmqsource", "Ready=True on the 2020 object", func(u *unstructured.Unstructured) bool {
		s, _, _ := unstructured.NestedString(u.Object, "status", "sinkUri")
		return condition(u, "Ready") == "True" && s == "http://event-display.default.svc.cluster.local/"
	})

	// The reasons the controller recorded on the sources, as `kubectl get events` shows them.
	checkEvents(t, cl.Config)

	// Health and metrics, as the controller's pod serves them.
	hs := httptest.NewServer(c.Handler())
	defer hs.Close()
	for path, want := range map[string]string{"/readyz": "ok", "/healthz": "ok", "/metrics": `tide_rocketmqsource_controller_reconciles_total{result="success"}`} {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %.200q, want 200 with %q", path, resp.StatusCode, body, want)
		}
	}

	// Settled sources cause no writes: the one Deployment update was the maxInFlight change (an update loop from
	// comparing against API-server defaults would show here).
	if n := strings.Count(logs.String(), "updated the adapter Deployment"); n != 1 {
		t.Errorf("%d Deployment updates, want 1 (the spec change)", n)
	}

	// Deleting the source garbage-collects its Deployment through the owner reference (kube-controller-manager's
	// garbage collector, not the controller).
	if err := srcs.Delete(ctx, "orders", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the garbage collector to delete the adapter Deployment", func() (bool, string) {
		_, err := kube.AppsV1().Deployments("default").Get(ctx, "orders-rocketmqsource", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if _, err := kube.AppsV1().Deployments("default").Get(ctx, "alirocketmqsource-rocketmqsource-2020", metav1.GetOptions{}); err != nil {
		t.Errorf("the other source's Deployment: %v", err)
	}

	// The sink goes away: as inside tide, the source stops consuming (its Deployment is removed) and says why.
	if err := kube.CoreV1().Services("default").Delete(ctx, "event-display", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, legacySrcs, "alirocketmqsource", "SinkProvided=False after the Service is deleted", func(u *unstructured.Unstructured) bool {
		return condition(u, "SinkProvided") == "False" && condition(u, "Ready") == "False"
	})
	waitFor(t, 30*time.Second, "the 2020 source's Deployment to be removed", func() (bool, string) {
		_, err := kube.AppsV1().Deployments("default").Get(ctx, "alirocketmqsource-rocketmqsource-2020", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})

	checkLeaderElection(t, ctx, asController, cl.Config)
}

func checkOwner(t *testing.T, d *appsv1.Deployment, owner *unstructured.Unstructured) {
	t.Helper()
	ref := metav1.GetControllerOf(d)
	if ref == nil || ref.UID != owner.GetUID() || ref.Kind != "RocketMQSource" || ref.APIVersion != owner.GetAPIVersion() ||
		ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("Deployment %s owner %+v, want the controlling, blocking reference to %s %s (uid %s)", d.Name, ref, owner.GetAPIVersion(), owner.GetName(), owner.GetUID())
	}
}

// markAvailable writes what the deployment controller writes once the kubelet reports the Pod ready.
func markAvailable(t *testing.T, ctx context.Context, kube kubernetes.Interface, d *appsv1.Deployment) {
	t.Helper()
	for {
		cur, err := kube.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Status.Replicas, cur.Status.ReadyReplicas, cur.Status.AvailableReplicas = 1, 1, 1
		cur.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
			Reason: "MinimumReplicasAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
		_, err = kube.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue // the controller updated it meanwhile
		}
		if err != nil {
			t.Fatal(err)
		}
		return
	}
}

func envMap(env []corev1.EnvVar) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			m[e.Name] = "secret " + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		default:
			m[e.Name] = e.Value
		}
	}
	return m
}

func conditionField(u *unstructured.Unstructured, typ, field string) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			s, _ := m[field].(string)
			return s
		}
	}
	return ""
}

func condition(u *unstructured.Unstructured, typ string) string {
	return conditionField(u, typ, "status")
}
func conditionReason(u *unstructured.Unstructured, typ string) string {
	return conditionField(u, typ, "reason")
}
func conditionMessage(u *unstructured.Unstructured, typ string) string {
	return conditionField(u, typ, "message")
}

func waitStatus(t *testing.T, ctx context.Context, r dynamic.ResourceInterface, name, what string, ok func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	t.Helper()
	var last *unstructured.Unstructured
	waitFor(t, 30*time.Second, name+": "+what, func() (bool, string) {
		u, err := r.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		last = u
		return ok(u), fmt.Sprint(u.Object["status"])
	})
	return last
}

// waitFor polls cond every 50 ms until it holds or the deadline passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; last: %s", limit, what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func applyFile(t *testing.T, ctx context.Context, dyn dynamic.Interface, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	applyYAML(t, ctx, dyn, b)
}

// applyYAML creates each document with the dynamic client (resource names from the kinds used here).
func applyYAML(t *testing.T, ctx context.Context, dyn dynamic.Interface, b []byte) {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return
			}
			t.Fatal(err)
		}
		if len(u.Object) == 0 {
			continue
		}
		gv, err := schema.ParseGroupVersion(u.GetAPIVersion())
		if err != nil {
			t.Fatal(err)
		}
		resource := strings.ToLower(u.GetKind()) + "s"
		if u.GetKind() == "CustomResourceDefinition" {
			resource = "customresourcedefinitions"
		}
		var ri dynamic.ResourceInterface = dyn.Resource(gv.WithResource(resource))
		if u.GetNamespace() != "" {
			ri = dyn.Resource(gv.WithResource(resource)).Namespace(u.GetNamespace())
		}
		if _, err := ri.Create(ctx, &u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}

// lockedWriter serializes writes to the controller's log buffer and reads of it.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
