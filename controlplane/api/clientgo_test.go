package api

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeconfig is the document docs/security.md tells users to write for kubectl (and anything built on client-go).
// kubectl and client-go send a kubeconfig's token only over https, so the cluster entry carries the CA of the API's
// certificate (caPEM).
func kubeconfig(server string, caPEM []byte, token string) string {
	user := "  user: {}\n"
	if token != "" {
		user = "  user:\n    token: " + token + "\n"
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: tide
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: tide
%scontexts:
- name: tide
  context: {cluster: tide, user: tide}
current-context: tide
`, server, base64.StdEncoding.EncodeToString(caPEM), user)
}

// caOf is the PEM of an httptest TLS server's certificate (self-signed: its own CA).
func caOf(hs *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})
}

// jsonConfig: tide speaks JSON; client-go's typed clientsets default to protobuf for built-in kinds, so a program
// using them against tide sets the content type (kubectl and the dynamic client send JSON already).
func jsonConfig(cfg *rest.Config) *rest.Config {
	cfg.ContentType = "application/json"
	cfg.WarningHandler = rest.NoWarnings{} // the redaction Warning is asserted in guard_test.go, not logged here
	return cfg
}

var ksvcGVR = schema.GroupVersionResource{Group: "serving.knative.dev", Version: "v1", Resource: "services"}

// TestClientGoThroughTheGuard: client-go (the typed clientset and the dynamic client kubectl's apply uses), from a
// kubeconfig with the token, passes the guard for create, patch, list, watch and delete, on an API that requires
// the token; without the token, or with a wrong one, it gets Kubernetes' Unauthorized error.
func TestClientGoThroughTheGuard(t *testing.T) {
	hs := newGuardedServerTLS(t, Access{Host: "127.0.0.1", Token: testToken, RequireToken: true}, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(kubeconfig(hs.URL, caOf(hs), testToken)))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(jsonConfig(rest.CopyConfig(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	w, err := cs.CoreV1().Secrets("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()
	sec, err := cs.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		StringData: map[string]string{"password": "hunter2"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create secret: %v", err)
	}
	if string(sec.Data["password"]) != "hunter2" {
		t.Fatalf("the token holder sees the value: %v", sec.Data)
	}
	select {
	case e := <-w.ResultChan():
		if s, ok := e.Object.(*corev1.Secret); !ok || s.Name != "db" || string(s.Data["password"]) != "hunter2" {
			t.Fatalf("watch event %v %T", e.Type, e.Object)
		}
	case <-ctx.Done():
		t.Fatal("no watch event")
	}

	svc := &unstructured.Unstructured{}
	if err := svc.UnmarshalJSON([]byte(strings.Replace(shellService, `"pwned"`, `"hello"`, 1))); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(ksvcGVR).Namespace("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("dynamic create: %v", err)
	}
	if _, err := dyn.Resource(ksvcGVR).Namespace("default").Patch(ctx, "hello", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"team":"a"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("dynamic merge patch: %v", err)
	}
	l, err := dyn.Resource(ksvcGVR).Namespace("default").List(ctx, metav1.ListOptions{LabelSelector: "team=a"})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("dynamic list: %v %v", l, err)
	}
	if err := dyn.Resource(ksvcGVR).Namespace("default").Delete(ctx, "hello", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("dynamic delete (DeleteOptions body): %v", err)
	}

	for name, token := range map[string]string{"no token": "", "wrong token": "nope"} {
		cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(kubeconfig(hs.URL, caOf(hs), token)))
		if err != nil {
			t.Fatal(err)
		}
		cs, err := kubernetes.NewForConfig(jsonConfig(cfg))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
		if !apierrors.IsUnauthorized(err) {
			t.Errorf("%s: %v, want Unauthorized", name, err)
		}
	}
}

// TestClientGoAnonymousOnLoopback: on an API that admits anonymous callers (the plain-http loopback default),
// client-go without a token works, and Secrets come back without their values; with the token in rest.Config
// (which client-go sends over http too, unlike a kubeconfig's) they are whole.
func TestClientGoAnonymousOnLoopback(t *testing.T) {
	hs := newGuardedServer(t, Access{Host: "127.0.0.1", Token: testToken})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := kubernetes.NewForConfig(jsonConfig(&rest.Config{Host: hs.URL}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"},
		Data: map[string]string{"a": "b"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("anonymous configmap create: %v", err)
	}
	if _, err := cs.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		StringData: map[string]string{"password": "hunter2"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("anonymous secret create: %v", err)
	}
	s, err := cs.CoreV1().Secrets("default").Get(ctx, "db", metav1.GetOptions{})
	if err != nil || len(s.Data) != 0 || s.Annotations[RedactedAnnotation] == "" {
		t.Fatalf("anonymous secret get: %+v %v", s, err)
	}
	withToken, err := kubernetes.NewForConfig(jsonConfig(&rest.Config{Host: hs.URL, BearerToken: testToken}))
	if err != nil {
		t.Fatal(err)
	}
	s, err = withToken.CoreV1().Secrets("default").Get(ctx, "db", metav1.GetOptions{})
	if err != nil || string(s.Data["password"]) != "hunter2" {
		t.Fatalf("secret get with the token: %+v %v", s, err)
	}
}
