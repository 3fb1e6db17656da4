package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tide-run/tide/controlplane/client"
	"github.com/tide-run/tide/server"
	"github.com/tide-run/tide/server/servertest"
)

// tideEnv is a real platform (store on disk, API on port 0) and the command tree run in-process against it.
type tideEnv struct {
	t   *testing.T
	dir string
	srv *servertest.Server
	url string
}

func startTide(t *testing.T, dir string) *tideEnv {
	t.Helper()
	srv := servertest.RunServer(t, server.Options{DataDir: dir})
	return &tideEnv{t: t, dir: dir, srv: srv, url: srv.APIURL()}
}

// stop shuts the platform down before the test ends (a restart on the same data dir).
func (e *tideEnv) stop() {
	if err := e.srv.Stop(); err != nil {
		e.t.Errorf("shutdown: %v", err)
	}
}

func (e *tideEnv) run(stdin string, args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := Main(append([]string{"--server", e.url}, args...), strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// mustRun runs a command that must succeed and returns its stdout.
func (e *tideEnv) mustRun(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run("", args...)
	if code != 0 {
		e.t.Fatalf("tide %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (e *tideEnv) client() *client.Client {
	c, err := client.New(e.url, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func getJSON(t *testing.T, e *tideEnv, args ...string) map[string]any {
	t.Helper()
	out := e.mustRun(append([]string{"get"}, append(args, "-o", "json")...)...)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("get %v: %v\n%s", args, err, out)
	}
	return m
}

func TestRoundTripEveryKind(t *testing.T) {
	e := startTide(t, t.TempDir())
	out, errOut, code := e.run("", "apply", "-f", "testdata/kinds/all.yaml")
	if code != 0 {
		t.Fatalf("apply exit %d: %s %s", code, out, errOut)
	}
	kinds := []struct{ kind, name, line string }{
		{"ksvc", "hello", "service.serving.knative.dev/hello created"},
		{"configuration", "standalone", "configuration.serving.knative.dev/standalone created"},
		{"route", "standalone", "route.serving.knative.dev/standalone created"},
		{"revision", "manual-rev", "revision.serving.knative.dev/manual-rev created"},
		{"broker", "default", "broker.eventing.knative.dev/default created"},
		{"trigger", "t1", "trigger.eventing.knative.dev/t1 created"},
		{"rocketmqsources.sources.knative.dev", "src", "rocketmqsource.sources.knative.dev/src created"},
		{"rocketmqsources.sources.eventing.knative.dev", "old-src", "rocketmqsource.sources.eventing.knative.dev/old-src created"},
		{"secret", "creds", "secret/creds created"},
		{"cm", "settings", "configmap/settings created"},
		{"sa", "robot", "serviceaccount/robot created"},
		{"ns", "food", "namespace/food created"},
		{"clusterrole", "reader", "clusterrole.rbac.authorization.k8s.io/reader created"},
		{"clusterrolebinding", "reader-binding", "clusterrolebinding.rbac.authorization.k8s.io/reader-binding created"},
		{"role", "local-reader", "role.rbac.authorization.k8s.io/local-reader created"},
		{"rolebinding", "local-reader-binding", "rolebinding.rbac.authorization.k8s.io/local-reader-binding created"},
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(kinds) {
		t.Fatalf("apply printed %d lines, want %d:\n%s", len(lines), len(kinds), out)
	}
	for i, k := range kinds {
		if lines[i] != k.line {
			t.Errorf("line %d = %q, want %q", i, lines[i], k.line)
		}
	}
	if !strings.Contains(errOut, "Warning: v1 ServiceAccount is stored but tide does not act on it") {
		t.Errorf("no warning for a kind tide does not act on: %s", errOut)
	}
	// A second apply of the same documents changes nothing.
	out = e.mustRun("apply", "-f", "testdata/kinds/all.yaml")
	if strings.Count(out, " unchanged\n") != len(kinds) {
		t.Fatalf("re-apply not unchanged:\n%s", out)
	}
	for _, k := range kinds {
		obj := getJSON(t, e, k.kind, k.name)
		md := obj["metadata"].(map[string]any)
		if md["name"] != k.name || md["uid"] == "" || md["resourceVersion"] == "" || md["creationTimestamp"] == nil {
			t.Errorf("%s %s: metadata %v", k.kind, k.name, md)
		}
		table := e.mustRun("get", k.kind)
		if !strings.HasPrefix(table, "NAME") || !strings.Contains(table, k.name) {
			t.Errorf("get %s table:\n%s", k.kind, table)
		}
		desc := e.mustRun("describe", k.kind+"/"+k.name)
		if !strings.Contains(desc, "Name:") || !strings.Contains(desc, k.name) {
			t.Errorf("describe %s %s:\n%s", k.kind, k.name, desc)
		}
	}
	// Secrets are stored as the API server stores them: stringData folded into data. Their values are served
	// only to callers with the API token (docs/security-api.md).
	sec := getJSON(t, e, "--token", e.srv.Access().Token, "secret", "creds")
	if sec["data"].(map[string]any)["token"] != "YWJj" || sec["stringData"] != nil {
		t.Errorf("secret %v", sec)
	}
	// The eventing kinds are reconciled by the eventing runtime: the Broker becomes Ready, the others report a
	// Ready condition of their own (the source's topic does not exist, so it is not Ready).
	e.mustRun("wait", "broker", "default", "--for=condition=Ready", "--timeout=20s")
	for _, k := range []string{"trigger/t1", "rocketmqsources.sources.knative.dev/src"} {
		kind, name, _ := strings.Cut(k, "/")
		eventually(t, 20*time.Second, func() error {
			obj := getJSON(t, e, kind, name)
			st, _ := obj["status"].(map[string]any)
			conds, _ := st["conditions"].([]any)
			for _, c := range conds {
				cm := c.(map[string]any)
				if cm["type"] == "Ready" && cm["reason"] != "NotImplemented" && cm["status"] != "Unknown" {
					return nil
				}
			}
			return fmt.Errorf("%s: no decided Ready condition: %v", k, st)
		})
	}
	// (Serving is built in: ksvc/hello reports its own reason, see serving/runtime's tests.)
	for _, k := range kinds {
		out := e.mustRun("delete", k.kind, k.name)
		if !strings.HasSuffix(out, fmt.Sprintf("%q deleted\n", k.name)) {
			t.Errorf("delete output %q", out)
		}
		// A Broker or Trigger is held by the eventing runtime's finalizer until its topic or group is gone.
		eventually(t, 20*time.Second, func() error {
			_, errOut, code := e.run("", "get", k.kind, k.name)
			if code != 1 || !strings.HasPrefix(errOut, "Error from server (NotFound): ") {
				return fmt.Errorf("get after delete of %s: exit %d, %q", k.kind, code, errOut)
			}
			return nil
		})
	}
}

func TestApplyInvalidDocuments(t *testing.T) {
	e := startTide(t, t.TempDir())
	out, errOut, code := e.run("", "apply", "-f", "testdata/invalid.yaml")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	if out != "configmap/good created\n" {
		t.Errorf("stdout %q", out)
	}
	for _, want := range []string{
		`"testdata/invalid.yaml" (document 2)`, "spec.template.spec.containerConcurrency", "expected 0 <= -1 <= 1000",
		`"testdata/invalid.yaml" (document 3)`, "spec.template.spec.containers[0].imagePullPolcy", "unknown field",
		"Error from server (Invalid)",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	for _, name := range []string{"bad-concurrency", "bad-field"} {
		if _, _, code := e.run("", "get", "ksvc", name); code != 1 {
			t.Errorf("invalid %s was stored", name)
		}
	}
	// stdin, and a document that is not YAML at all.
	_, errOut, code = e.run("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n", "apply", "-f", "-")
	if code != 1 || !strings.Contains(errOut, `"-" (document 1)`) {
		t.Errorf("unparsable stdin: exit %d %q", code, errOut)
	}
	_, errOut, code = e.run("", "apply", "-f", "testdata/no-such-file.yaml")
	if code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("missing file: exit %d %q", code, errOut)
	}
	_, errOut, code = e.run("", "get", "widgets")
	if code != 1 || !strings.Contains(errOut, `doesn't have a resource type "widgets"`) {
		t.Errorf("unknown kind: exit %d %q", code, errOut)
	}
}

func TestSeedBundleApplies(t *testing.T) {
	e := startTide(t, t.TempDir())
	files := []string{"200-serviceaccount.yaml", "202-clusterrolebinding.yaml", "203-secret.yaml", "alirocketmqsource.yaml",
		"broker.yaml", "ksvc-order-service.yaml", "trigger.yaml"}
	args := []string{"apply"}
	for _, f := range files {
		args = append(args, "-f", filepath.Join("testdata/seed", f))
	}
	out := e.mustRun(args...)
	want := `serviceaccount/rocketmq-controller-manager created
clusterrolebinding.rbac.authorization.k8s.io/eventing-sources-rocketmq-controller created
secret/alirocketmq-source-secret created
rocketmqsource.sources.eventing.knative.dev/alirocketmq created
broker.eventing.knative.dev/default created
service.serving.knative.dev/order-service created
trigger.eventing.knative.dev/order-trigger created
`
	if out != want {
		t.Fatalf("apply output:\n%s\nwant:\n%s", out, want)
	}
	// The directory form applies the same bundle, unchanged.
	out = e.mustRun("apply", "-f", "testdata/seed")
	if strings.Count(out, "unchanged") != len(files) {
		t.Fatalf("re-apply of the directory:\n%s", out)
	}
	// The service got its children; its revision carries Knative's labels.
	eventually(t, 10*time.Second, func() error {
		rev, err := e.client().Get(context.Background(), mustKind(t, e, "rev"), "default", "order-service-00001")
		if err != nil {
			return err
		}
		if rev.GetLabels()["serving.knative.dev/service"] != "order-service" {
			return fmt.Errorf("labels %v", rev.GetLabels())
		}
		return nil
	})
	out = e.mustRun("delete", "-f", "testdata/seed")
	if strings.Count(out, " deleted\n") != len(files) {
		t.Fatalf("delete -f:\n%s", out)
	}
	// The Broker and Trigger go once the eventing runtime has cleaned up and removed its finalizers.
	e.mustRun("wait", "broker", "default", "--for=delete", "--timeout=20s")
	e.mustRun("wait", "trigger", "order-trigger", "--for=delete", "--timeout=20s")
	_, errOut, code := e.run("", "delete", "-f", "testdata/seed")
	if code != 1 || strings.Count(errOut, "Error from server (NotFound)") != len(files) {
		t.Fatalf("second delete: exit %d\n%s", code, errOut)
	}
	if _, _, code := e.run("", "delete", "-f", "testdata/seed", "--ignore-not-found"); code != 0 {
		t.Fatalf("--ignore-not-found exit %d", code)
	}
	if _, err := e.client().Get(context.Background(), mustKind(t, e, "rev"), "default", "order-service-00001"); !client.IsNotFound(err) {
		t.Fatalf("revision survived deleting its service: %v", err)
	}
}

func mustKind(t *testing.T, e *tideEnv, name string) client.Kind {
	t.Helper()
	k, err := e.client().ResolveKind(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestServiceRevisionsAndCascade(t *testing.T) {
	e := startTide(t, t.TempDir())
	svc := func(image string) string {
		return fmt.Sprintf(`apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: web, namespace: apps}
spec:
  template:
    spec:
      containers: [{image: %s}]
`, image)
	}
	if out, errOut, code := e.run(svc("ko://example.com/web/v1"), "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: %s %s", out, errOut)
	}
	waitRevs := func(want ...string) {
		t.Helper()
		eventually(t, 10*time.Second, func() error {
			out, _, _ := e.run("", "get", "rev", "-n", "apps", "-o", "name")
			got := strings.Fields(out)
			if len(got) != len(want) {
				return fmt.Errorf("revisions %v", got)
			}
			for i := range want {
				if got[i] != "revision.serving.knative.dev/"+want[i] {
					return fmt.Errorf("revisions %v", got)
				}
			}
			return nil
		})
	}
	waitRevs("web-00001")
	// A label-only change does not stamp a revision; a template change does.
	if out, errOut, code := e.run(svc("ko://example.com/web/v2"), "apply", "-f", "-"); code != 0 || out != "service.serving.knative.dev/web configured\n" {
		t.Fatalf("apply v2: %q %s", out, errOut)
	}
	waitRevs("web-00001", "web-00002")
	eventually(t, 10*time.Second, func() error {
		obj := getJSON(t, e, "ksvc", "web", "-n", "apps")
		st, _ := obj["status"].(map[string]any)
		if st["latestCreatedRevisionName"] != "web-00002" || st["url"] != "http://web.apps.localhost:"+strings.TrimPrefix(e.srv.GatewayURL(), "http://127.0.0.1:") ||
			st["observedGeneration"] != float64(2) {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
	cfg := getJSON(t, e, "config", "web", "-n", "apps")
	refs := cfg["metadata"].(map[string]any)["ownerReferences"].([]any)
	if refs[0].(map[string]any)["kind"] != "Service" || refs[0].(map[string]any)["controller"] != true {
		t.Fatalf("configuration owner %v", refs)
	}
	// The image cannot run: the serving runtime reports it (Unknown while it is still trying, then False).
	eventually(t, 10*time.Second, func() error {
		table := e.mustRun("get", "ksvc", "-A")
		if !strings.HasPrefix(table, "NAMESPACE") || !strings.Contains(table, "False") || strings.Contains(table, "NotImplemented") {
			return fmt.Errorf("get -A:\n%s", table)
		}
		return nil
	})
	_, _, code := e.run("", "wait", "ksvc", "web", "-n", "apps", "--for=condition=Ready", "--timeout=200ms")
	if code != 1 {
		t.Fatalf("wait for Ready on a service whose image cannot run exited %d", code)
	}
	eventually(t, 10*time.Second, func() error {
		desc := e.mustRun("describe", "ksvc", "web", "-n", "apps")
		for _, want := range []string{"Events:", `Created Configuration "web"`, `Created Route "web"`, "Conditions:", "Revision",
			"Revisions:", "web-00002"} {
			if !strings.Contains(desc, want) {
				return fmt.Errorf("describe lacks %q:\n%s", want, desc)
			}
		}
		return nil
	})
	e.mustRun("delete", "ksvc", "web", "-n", "apps")
	for _, k := range []string{"config", "route", "rev", "events"} {
		out, errOut, _ := e.run("", "get", k, "-n", "apps")
		if out != "" || !strings.Contains(errOut, "No resources found in apps namespace.") {
			t.Errorf("%s survived the cascade: %q %q", k, out, errOut)
		}
	}
}

func TestConflictOnStaleResourceVersion(t *testing.T) {
	e := startTide(t, t.TempDir())
	e.mustRun("apply", "-f", "testdata/kinds/all.yaml")
	c := e.client()
	ctx := context.Background()
	k := mustKind(t, e, "cm")
	cm, err := c.Get(ctx, k, "default", "settings")
	if err != nil {
		t.Fatal(err)
	}
	first := cm.DeepCopy()
	first.Object["data"] = map[string]any{"mode": "slow"}
	if _, _, err := c.Update(ctx, k, first); err != nil {
		t.Fatal(err)
	}
	stale := cm.DeepCopy()
	stale.Object["data"] = map[string]any{"mode": "lost"}
	_, _, err = c.Update(ctx, k, stale)
	if !client.IsConflict(err) {
		t.Fatalf("stale update: %v", err)
	}
	var se *client.StatusError
	if !errorsAs(err, &se) || se.Status.Code != 409 || se.Status.Kind != "Status" {
		t.Fatalf("status %+v", se)
	}
	got, _ := c.Get(ctx, k, "default", "settings")
	if got.Object["data"].(map[string]any)["mode"] != "slow" {
		t.Fatalf("stale write landed: %v", got.Object["data"])
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	e := startTide(t, dir)
	e.mustRun("apply", "-f", "testdata/seed")
	before := getJSON(t, e, "ksvc", "order-service")
	e.stop()

	e2 := startTide(t, dir)
	after := getJSON(t, e2, "ksvc", "order-service")
	bm, am := before["metadata"].(map[string]any), after["metadata"].(map[string]any)
	if bm["uid"] != am["uid"] || bm["creationTimestamp"] != am["creationTimestamp"] {
		t.Fatalf("metadata changed across restart: %v vs %v", bm, am)
	}
	out := e2.mustRun("apply", "-f", "testdata/seed")
	if strings.Count(out, "unchanged") != 7 {
		t.Fatalf("re-apply after restart:\n%s", out)
	}
}

func TestWatchDeliversChanges(t *testing.T) {
	e := startTide(t, t.TempDir())
	c := e.client()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := mustKind(t, e, "configmap")
	ch, err := c.Watch(ctx, k, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	doc := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: w}\ndata: {v: \"%d\"}\n"
	e.run(fmt.Sprintf(doc, 1), "apply", "-f", "-")
	e.run(fmt.Sprintf(doc, 2), "apply", "-f", "-")
	e.mustRun("delete", "cm", "w")
	for i, want := range []string{"ADDED", "MODIFIED", "DELETED"} {
		select {
		case ev := <-ch:
			if ev.Type != want || ev.Object.GetName() != "w" {
				t.Fatalf("event %d: %s %s", i, ev.Type, ev.Object.GetName())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d (%s) not delivered", i, want)
		}
	}
}

func TestGetWatchFollowsChanges(t *testing.T) {
	e := startTide(t, t.TempDir())
	e.run("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n", "apply", "-f", "-")
	out := &syncBuffer{}
	root := NewRootCommand(strings.NewReader(""), out, io.Discard)
	root.SetArgs([]string{"--server", e.url, "get", "cm", "-w"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	eventually(t, 10*time.Second, func() error {
		if !strings.Contains(out.String(), "first") {
			return fmt.Errorf("initial list: %q", out.String())
		}
		return nil
	})
	e.run("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: second}\n", "apply", "-f", "-")
	eventually(t, 10*time.Second, func() error {
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[2], "second") {
			return fmt.Errorf("watch output %q", out.String())
		}
		return nil
	})
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("get -w did not end with its context")
	}
}

// TestApplyRefusesRegistryImage: a Service naming a container image tide cannot pull is refused by apply, with the
// field and the fix, and nothing is stored (it used to be stored and fail later, visible only in describe).
func TestApplyRefusesRegistryImage(t *testing.T) {
	e := startTide(t, t.TempDir())
	doc := `apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: barrage-main}
spec:
  template:
    spec:
      containers: [{image: "registry.cn-shanghai.aliyuncs.com/knative-sample/barrage-main:v1"}]
`
	_, errOut, code := e.run(doc, "apply", "-f", "-")
	if code != 1 {
		t.Fatalf("apply exit %d: %s", code, errOut)
	}
	for _, want := range []string{"Error from server (Invalid)", "spec.template.spec.containers[0].image", "ko://", "command"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if _, _, code := e.run("", "get", "ksvc", "barrage-main"); code != 1 {
		t.Errorf("the refused service was stored")
	}
}
