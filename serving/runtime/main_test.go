package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/tide-run/tide/cli"
	"github.com/tide-run/tide/controlplane/client"
	"github.com/tide-run/tide/server"
	"github.com/tide-run/tide/server/servertest"
	"github.com/tide-run/tide/serving/process"
)

// The platform tests run the whole `tide up` composition (servertest: every port 0, a temp data dir) with real
// processes built from test/apps and real HTTP through the gateway.

const conformanceImage = "ko://github.com/tide-run/tide/test/apps/conformance"

var (
	buildCache string // shared by every test: each test program is built once
	repoRoot   string
)

func TestMain(m *testing.M) {
	var err error
	repoRoot, err = filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	buildCache, err = os.MkdirTemp("", "tide-runtime-test-")
	if err != nil {
		panic(err)
	}
	b, err := process.NewBuilder(process.BuilderOptions{CacheDir: buildCache})
	if err != nil {
		panic(err)
	}
	if _, err := b.Build(context.Background(), repoRoot, conformanceImage); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(buildCache)
	os.Exit(code)
}

// platform is one running tide.
type platform struct {
	t   testing.TB
	srv *servertest.Server
	c   *client.Client
	hc  *http.Client
}

// fastScaling shortens Knative's idle path for tests: 6 s stable window (the minimum), 1 s grace.
const fastScaling = `
apiVersion: v1
kind: ConfigMap
metadata: {name: config-autoscaler, namespace: knative-serving}
data:
  stable-window: 6s
  scale-to-zero-grace-period: 1s
`

func start(t testing.TB) *platform {
	t.Helper()
	return startIn(t, t.TempDir())
}

// startIn runs tide on an existing data dir (a restart).
func startIn(t testing.TB, dataDir string) *platform {
	t.Helper()
	return startWith(t, server.Options{Host: "127.0.0.1", DataDir: dataDir,
		Serving: server.ServingOptions{BuildCacheDir: buildCache, SourceDir: repoRoot, AutoscalerTick: time.Second}})
}

// startWith starts tide with opts (servertest.Start: the tests wait for the objects they apply, not for /readyz).
// With -v the platform's log goes to stderr as it happens; otherwise servertest shows it when the test fails.
func startWith(t testing.TB, opts server.Options) *platform {
	t.Helper()
	if testing.Verbose() && opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	srv := servertest.Start(t, opts)
	p := &platform{t: t, srv: srv, hc: &http.Client{Timeout: 30 * time.Second}}
	var err error
	if p.c, err = client.New(srv.APIURL(), nil); err != nil {
		t.Fatal(err)
	}
	return p
}

// apply applies YAML documents through the API, as `tide apply` does.
func (p *platform) apply(docs string) {
	p.t.Helper()
	for _, doc := range strings.Split(docs, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			p.t.Fatalf("yaml: %v\n%s", err, doc)
		}
		if _, err := p.c.Apply(context.Background(), &unstructured.Unstructured{Object: m}, "default"); err != nil {
			p.t.Fatalf("apply: %v\n%s", err, doc)
		}
	}
}

// get fetches an object by kind name ("ksvc", "rev", ...).
func (p *platform) get(kind, name string) *unstructured.Unstructured {
	p.t.Helper()
	o, err := p.tryGet(kind, name)
	if err != nil {
		p.t.Fatalf("get %s %s: %v", kind, name, err)
	}
	return o
}

func (p *platform) tryGet(kind, name string) (*unstructured.Unstructured, error) {
	k, err := p.c.ResolveKind(context.Background(), kind)
	if err != nil {
		return nil, err
	}
	return p.c.Get(context.Background(), k, "default", name)
}

func cond(o *unstructured.Unstructured, typ string) (status, reason, message string) {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			s, _ := m["status"].(string)
			r, _ := m["reason"].(string)
			msg, _ := m["message"].(string)
			return s, r, msg
		}
	}
	return "", "", ""
}

// eventually polls f until it returns "" or the deadline passes; f returns what is still wrong.
func (p *platform) eventually(what string, timeout time.Duration, f func() string) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		if last = f(); last == "" {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *platform) waitReady(kind, name string) *unstructured.Unstructured {
	p.t.Helper()
	var o *unstructured.Unstructured
	p.eventually(kind+" "+name+" Ready", 60*time.Second, func() string {
		o = p.get(kind, name)
		if s, r, m := cond(o, "Ready"); s != "True" {
			return fmt.Sprintf("Ready=%s %s %s", s, r, m)
		}
		return ""
	})
	return o
}

// request sends a request through the gateway with the given Host.
func (p *platform) request(host, path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, p.srv.GatewayURL()+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (p *platform) mustGet(host, path string) string {
	p.t.Helper()
	code, body, err := p.request(host, path)
	if err != nil || code != 200 {
		p.t.Fatalf("GET %s%s: %d %v %s", host, path, code, err, body)
	}
	return body
}

// replicas returns status.desiredReplicas and actualReplicas of a revision (-1 when unset).
func (p *platform) replicas(rev string) (desired, actual int64) {
	o := p.get("rev", rev)
	d, ok1, _ := unstructured.NestedInt64(o.Object, "status", "desiredReplicas")
	a, ok2, _ := unstructured.NestedInt64(o.Object, "status", "actualReplicas")
	if !ok1 {
		d = -1
	}
	if !ok2 {
		a = -1
	}
	return d, a
}

// tide runs the CLI against this platform and returns its output.
func (p *platform) tide(args ...string) string {
	p.t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Main(append(args, "--server", p.srv.APIURL()), strings.NewReader(""), &out, &errOut)
	if code != 0 {
		p.t.Fatalf("tide %s: exit %d: %s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
	return out.String()
}
