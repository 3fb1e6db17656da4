package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/tide-run/tide/serving/process"
)

const (
	conformanceImage = "ko://github.com/tide-run/tide/test/apps/conformance"
	helloImage       = "ko://github.com/tide-run/tide/test/apps/hello"
)

// builder is shared by the tests and benchmarks of this binary: each test program is built once.
var builder *process.Builder

func TestMain(m *testing.M) {
	if backend := os.Getenv(envBenchGateway); backend != "" {
		// A child started by BenchmarkThroughput: this binary is the gateway process (bench_test.go).
		os.Exit(runBenchGateway(backend, os.Getenv(envBenchGatewayPlain) == ""))
	}
	dir, err := os.MkdirTemp("", "tide-gateway-test-")
	if err != nil {
		panic(err)
	}
	builder, err = process.NewBuilder(process.BuilderOptions{CacheDir: dir})
	if err != nil {
		panic(err)
	}
	for _, img := range []string{conformanceImage, helloImage} {
		if _, err := builder.Build(context.Background(), ".", img); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// revSpec describes a revision for deploy.
type revSpec struct {
	name    string // revision name; the service is "svc"
	image   string
	cc      int64
	timeout int64
	env     []corev1.EnvVar
	ports   []corev1.ContainerPort
}

// deploy starts a Pool for the revision and attaches it to the gateway. Scale starts at zero.
func deploy(t testing.TB, gw *Gateway, rs revSpec) (*process.Pool, types.NamespacedName) {
	t.Helper()
	if rs.image == "" {
		rs.image = conformanceImage
	}
	if rs.timeout == 0 {
		rs.timeout = 30
	}
	p, err := process.New(process.Options{
		Spec: process.Spec{
			Namespace: "default", Service: "svc", Configuration: "svc", Revision: rs.name, Dir: ".",
			RevisionSpec: servingv1.RevisionSpec{
				PodSpec:              corev1.PodSpec{Containers: []corev1.Container{{Image: rs.image, Env: rs.env, Ports: rs.ports}}},
				ContainerConcurrency: ptr.To(rs.cc),
				TimeoutSeconds:       ptr.To(rs.timeout),
			},
		},
		Builder: builder,
		DataDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: "default", Name: rs.name}
	detach := gw.AttachPool(key, p)
	t.Cleanup(func() {
		detach()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("close %s: %v", rs.name, err)
		}
	})
	return p, key
}

// serveRevision is the usual conformance setup: a gateway behind a test server, one revision of service "svc"
// taking 100% of its traffic, scaled to n ready instances.
func serveRevision(t testing.TB, rs revSpec, n int) (*Gateway, *httptest.Server, *process.Pool, types.NamespacedName) {
	t.Helper()
	gw := New(Options{})
	srv := serve(t, gw)
	p, key := deploy(t, gw, rs)
	if err := gw.SetRoute("default", "svc", []Target{{Revision: rs.name, Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	p.SetScale(n)
	waitReady(t, p, n)
	return gw, srv, p, key
}

// serve puts the gateway on a real listener (port 0) behind the Server tide runs (the lean HTTP/1.1 path, net/http
// for the rest), so every test here goes through both. The returned httptest.Server only carries URL and Listener.
func serve(t testing.TB, gw *Gateway) *httptest.Server {
	srv, _ := serveLean(t, gw, 10*time.Second)
	return srv
}

// serveLean is serve with the Server returned and its header timeout set.
func serveLean(t testing.TB, gw *Gateway, headerTimeout time.Duration) (*httptest.Server, *Server) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(gw, &http.Server{Handler: gw, ReadHeaderTimeout: headerTimeout})
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(l) }()
	t.Cleanup(func() {
		_ = s.Close()
		<-done
	})
	return &httptest.Server{URL: "http://" + l.Addr().String(), Listener: l}, s
}

func waitReady(t testing.TB, p *process.Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for p.ReadyCount() < n {
		if time.Now().After(deadline) {
			t.Fatalf("ready %d, want %d; status %+v", p.ReadyCount(), n, p.Status())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// get sends a request for host through the gateway and returns status and body.
func get(t testing.TB, client *http.Client, srv *httptest.Server, host, path string, hdr http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("GET %s%s: %v", host, path, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// scaleOnPoke is the test's stand-in for the KPA autoscaler (serving/autoscaler, wired by the server package):
// when the activator pokes a revision it scales that revision's pool to at least one instance, which is the
// decision the real autoscaler makes for a revision at zero with requests waiting.
type scaleOnPoke struct {
	mu    sync.Mutex
	pools map[types.NamespacedName]*process.Pool
	pokes int
}

func (s *scaleOnPoke) Poke(rev types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pokes++
	if p := s.pools[rev]; p != nil && p.Scale() == 0 {
		p.SetScale(1)
	}
}

// countingSink records request starts and ends per revision.
type countingSink struct {
	mu          sync.Mutex
	start, end  map[types.NamespacedName]int
	maxInFlight int
	inFlightNow int
}

func newCountingSink() *countingSink {
	return &countingSink{start: map[types.NamespacedName]int{}, end: map[types.NamespacedName]int{}}
}

func (c *countingSink) RequestStart(rev types.NamespacedName, _ time.Time) {
	c.mu.Lock()
	c.start[rev]++
	c.inFlightNow++
	c.maxInFlight = max(c.maxInFlight, c.inFlightNow)
	c.mu.Unlock()
}

func (c *countingSink) RequestEnd(rev types.NamespacedName, _ time.Time) {
	c.mu.Lock()
	c.end[rev]++
	c.inFlightNow--
	c.mu.Unlock()
}
