package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/client"
)

const helloService = `
apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: s3cret}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: hello}
spec:
  template:
    spec:
      containers:
      - image: ko://github.com/tide-run/tide/test/apps/conformance
        env:
        - name: DB_PASSWORD
          valueFrom: {secretKeyRef: {name: db, key: password}}
        - {name: GREETING, value: hi}
`

// TestServiceLifecycle: a Service becomes Ready with a reachable URL, its secret-backed env arrives, it scales to
// zero after the (shortened) idle window and back from zero on the first request; `tide logs` and
// `tide get rev -o wide` show it.
func TestServiceLifecycle(t *testing.T) {
	p := start(t)
	p.apply(fastScaling)
	p.apply(helloService)
	svc := p.waitReady("ksvc", "hello")

	u, _, _ := unstructured.NestedString(svc.Object, "status", "url")
	addr, _, _ := unstructured.NestedString(svc.Object, "status", "address", "url")
	parsed, err := url.Parse(u)
	if err != nil || parsed.Hostname() != "hello.default.localhost" || parsed.Port() != fmt.Sprint(p.srv.Serving().Port()) {
		t.Fatalf("status.url %q (gateway port %d)", u, p.srv.Serving().Port())
	}
	if addr != u {
		t.Fatalf("status.address.url %q, want %q", addr, u)
	}
	if s, _, _ := cond(svc, "ConfigurationsReady"); s != "True" {
		t.Fatalf("ConfigurationsReady %s", s)
	}
	if s, _, _ := cond(svc, "RoutesReady"); s != "True" {
		t.Fatalf("RoutesReady %s", s)
	}
	if lr, _, _ := unstructured.NestedString(svc.Object, "status", "latestReadyRevisionName"); lr != "hello-00001" {
		t.Fatalf("latestReadyRevisionName %q", lr)
	}
	route := p.get("route", "hello")
	traffic, _, _ := unstructured.NestedSlice(route.Object, "status", "traffic")
	if len(traffic) != 1 || traffic[0].(map[string]any)["revisionName"] != "hello-00001" ||
		fmt.Sprint(traffic[0].(map[string]any)["percent"]) != "100" || traffic[0].(map[string]any)["latestRevision"] != true {
		t.Fatalf("route traffic %v", traffic)
	}

	// Every host form reaches the service; the port in Host is ignored.
	for _, host := range []string{parsed.Host, "hello.default.svc.cluster.local", "hello.default.svc", "hello.default"} {
		if body := p.mustGet(host, "/"); strings.TrimSpace(body) != "hello-00001" {
			t.Fatalf("%s answered %q", host, body)
		}
	}
	var env map[string]string
	if err := json.Unmarshal([]byte(p.mustGet(parsed.Host, "/env")), &env); err != nil {
		t.Fatal(err)
	}
	if env["DB_PASSWORD"] != "s3cret" || env["GREETING"] != "hi" || env["K_SERVICE"] != "hello" ||
		env["K_CONFIGURATION"] != "hello" || env["K_REVISION"] != "hello-00001" || env["PORT"] == "" {
		t.Fatalf("env %v", env)
	}

	// tide logs: the program's start-up line, through the API.
	if out := p.tide("logs", "hello"); !strings.Contains(out, "revision hello-00001 listening on") {
		t.Fatalf("tide logs: %q", out)
	}
	// --revision and a bad request: a missing service is NotFound, a bad tailLines a 400 naming it.
	if out := p.tide("logs", "hello", "--revision", "hello-00001", "--prefix"); !strings.Contains(out, "[hello-00001-1] conformance: revision hello-00001 listening on") {
		t.Fatalf("tide logs --revision --prefix: %q", out)
	}
	if err := p.c.ServiceLogs(context.Background(), "default", "nope", client.LogOptions{}, func(client.LogLine) {}); !client.IsNotFound(err) {
		t.Fatalf("logs of a missing service: %v", err)
	}
	resp, err := http.Get(p.srv.APIURL() + "/apis/serving.knative.dev/v1/namespaces/default/services/hello/log?tailLines=x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "tailLines") {
		t.Fatalf("bad tailLines: %d %s", resp.StatusCode, b)
	}
	// tide get rev -o wide: desired/actual instances, concurrency, activator.
	wide := p.tide("get", "rev", "-o", "wide")
	for _, col := range []string{"DESIRED REPLICAS", "ACTUAL REPLICAS", "PROCESSES", "CONCURRENCY", "ACTIVATOR", "hello-00001"} {
		if !strings.Contains(wide, col) {
			t.Fatalf("tide get rev -o wide lacks %s:\n%s", col, wide)
		}
	}

	// Idle: to zero after the stable window (6 s) and the grace period (1 s). The Revision stays Ready.
	p.eventually("scale to zero", 30*time.Second, func() string {
		if d, a := p.replicas("hello-00001"); d != 0 || a != 0 {
			return fmt.Sprintf("desired %d actual %d", d, a)
		}
		return ""
	})
	rev := p.get("rev", "hello-00001")
	if s, _, _ := cond(rev, "Ready"); s != "True" {
		t.Fatalf("a revision at zero is still Ready; got %s", s)
	}
	if s, r, _ := cond(rev, "Active"); s != "False" || r != "NoTraffic" {
		t.Fatalf("Active %s %s at zero", s, r)
	}
	if in, _, _ := unstructured.NestedBool(rev.Object, "status", "tide", "activatorInPath"); !in {
		t.Fatal("activator not in the path at zero")
	}

	// Follow the logs (as `tide logs hello -f`): the next instance's start-up line must arrive.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	followed := make(chan client.LogLine, 100)
	go func() {
		_ = p.c.ServiceLogs(ctx, "default", "hello", client.LogOptions{Follow: true, TailLines: 1}, func(l client.LogLine) {
			select {
			case followed <- l:
			default:
			}
		})
	}()
	select { // the tail line arrives first: the stream is open
	case <-followed:
	case <-time.After(10 * time.Second):
		t.Fatal("no tail line from the log stream")
	}

	// From zero: the first request is held, an instance starts, the request succeeds.
	start := time.Now()
	if body := p.mustGet(parsed.Host, "/"); strings.TrimSpace(body) != "hello-00001" {
		t.Fatalf("from zero: %q", body)
	}
	t.Logf("cold start through the gateway: %v", time.Since(start))
	p.eventually("one instance after the cold start", 10*time.Second, func() string {
		if d, a := p.replicas("hello-00001"); d != 1 || a != 1 {
			return fmt.Sprintf("desired %d actual %d", d, a)
		}
		return ""
	})
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-followed:
			if l.Instance == "hello-00001-2" && strings.Contains(l.Text, "listening on") {
				return
			}
		case <-deadline:
			t.Fatal("the new instance's start-up line never reached the followed log stream")
		}
	}
}

// TestCrashingProgram: a program that exits at once makes the Revision, the Configuration and the Service not
// Ready, with the exit reason and the program's last lines.
func TestCrashingProgram(t *testing.T) {
	p := start(t)
	p.apply(`
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: crash}
spec:
  template:
    spec:
      containers:
      - image: ko://github.com/tide-run/tide/test/apps/conformance
        env: [{name: CONFORMANCE_MODE, value: crash}]
`)
	p.eventually("revision failed", 30*time.Second, func() string {
		rev, err := p.tryGet("rev", "crash-00001")
		if err != nil {
			return err.Error()
		}
		s, r, m := cond(rev, "Ready")
		if s != "False" || r != "ExitCode3" || !strings.Contains(m, "missing DATABASE_URL") {
			return fmt.Sprintf("Ready=%s %s %q", s, r, m)
		}
		if s, r, _ := cond(rev, "ContainerHealthy"); s != "False" || r != "ExitCode3" {
			return fmt.Sprintf("ContainerHealthy=%s %s", s, r)
		}
		return ""
	})
	p.eventually("service failed", 30*time.Second, func() string {
		svc := p.get("ksvc", "crash")
		if s, r, m := cond(svc, "Ready"); s != "False" {
			return fmt.Sprintf("Ready=%s %s %q", s, r, m)
		}
		if s, r, m := cond(svc, "ConfigurationsReady"); s != "False" || r != "RevisionFailed" || !strings.Contains(m, "missing DATABASE_URL") {
			return fmt.Sprintf("ConfigurationsReady=%s %s %q", s, r, m)
		}
		return ""
	})
	// A program that never listens fails the progress deadline (shortened by Knative's annotation), with its output.
	p.apply(`
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: silent}
spec:
  template:
    metadata:
      annotations: {serving.knative.dev/progress-deadline: 2s}
    spec:
      containers:
      - image: ko://github.com/tide-run/tide/test/apps/conformance
        env: [{name: CONFORMANCE_MODE, value: never-listen}]
`)
	p.eventually("silent revision failed", 30*time.Second, func() string {
		rev, err := p.tryGet("rev", "silent-00001")
		if err != nil {
			return err.Error()
		}
		if s, r, m := cond(rev, "Ready"); s != "False" || r != "ProgressDeadlineExceeded" || !strings.Contains(m, "configured never to listen") {
			return fmt.Sprintf("Ready=%s %s %q", s, r, m)
		}
		return ""
	})
	// Never Ready, so no traffic: the host answers 404 from the fallback, not a hung request.
	if code, _, err := p.request("crash.default.localhost", "/"); err != nil || code != 404 {
		t.Fatalf("unrouted crash service: %d %v", code, err)
	}
}

// TestTrafficSplitAndTag: a 50/50 split gives each revision at least 25% of 200 requests, and a tag URL reaches
// only its revision; Route status lists revision names, percents, tags and tag URLs.
func TestTrafficSplitAndTag(t *testing.T) {
	p := start(t)
	svc := func(gen string, traffic string) string {
		return `
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: split}
spec:
  template:
    spec:
      containers:
      - image: ko://github.com/tide-run/tide/test/apps/conformance
        env: [{name: GEN, value: "` + gen + `"}]
` + traffic
	}
	p.apply(svc("1", ""))
	p.waitReady("ksvc", "split")
	p.apply(svc("2", `  traffic:
  - {revisionName: split-00001, percent: 50, tag: blue}
  - {latestRevision: true, percent: 50, tag: green}
`))
	p.eventually("split routed", 60*time.Second, func() string {
		rt := p.get("route", "split")
		tr, _, _ := unstructured.NestedSlice(rt.Object, "status", "traffic")
		if len(tr) != 2 {
			return fmt.Sprintf("traffic %v", tr)
		}
		g := tr[1].(map[string]any)
		if g["revisionName"] != "split-00002" || g["tag"] != "green" || !strings.HasPrefix(fmt.Sprint(g["url"]), "http://green-split.default.localhost:") {
			return fmt.Sprintf("traffic %v", tr)
		}
		if s, r, m := cond(rt, "Ready"); s != "True" {
			return fmt.Sprintf("route Ready=%s %s %s", s, r, m)
		}
		return ""
	})
	counts := map[string]int{}
	for range 200 {
		counts[strings.TrimSpace(p.mustGet("split.default.localhost", "/"))]++
	}
	if counts["split-00001"] < 50 || counts["split-00002"] < 50 {
		t.Fatalf("50/50 split gave %v", counts)
	}
	for range 20 {
		if got := strings.TrimSpace(p.mustGet("blue-split.default.localhost", "/")); got != "split-00001" {
			t.Fatalf("tag blue reached %s", got)
		}
		if got := strings.TrimSpace(p.mustGet("green-split.default.svc.cluster.local", "/")); got != "split-00002" {
			t.Fatalf("tag green reached %s", got)
		}
	}
	// All traffic to a third revision: the old ones, no longer routed, go to zero after the idle window. The
	// shortened window is applied only now: config-autoscaler is watched and applies to running revisions.
	p.apply(fastScaling)
	p.apply(svc("3", ""))
	p.eventually("old revisions at zero", 40*time.Second, func() string {
		for _, rev := range []string{"split-00001", "split-00002"} {
			if d, a := p.replicas(rev); d != 0 || a != 0 {
				return fmt.Sprintf("%s desired %d actual %d", rev, d, a)
			}
		}
		return ""
	})
	if got := strings.TrimSpace(p.mustGet("split.default.localhost", "/")); got != "split-00003" {
		t.Fatalf("after moving all traffic: %s", got)
	}

	// Deleting the Service stops its processes and frees its hosts.
	insts := p.srv.Serving().Instances("default", "split-00003")
	if len(insts) == 0 {
		t.Fatal("no instance of split-00003")
	}
	p.tide("delete", "ksvc", "split")
	p.eventually("processes stopped", 20*time.Second, func() string {
		for _, in := range insts {
			if err := processExists(in.PID); !errors.Is(err, syscall.ESRCH) {
				return fmt.Sprintf("pid %d: %v", in.PID, err)
			}
		}
		if code, _, _ := p.request("split.default.localhost", "/"); code != 404 {
			return fmt.Sprintf("host answers %d", code)
		}
		return ""
	})
}

// TestScalingUnderLoadNoErrors: load from zero scales out, lighter load scales back, no load goes to zero and
// load again comes back from zero, and not one request fails on the way.
func TestScalingUnderLoadNoErrors(t *testing.T) {
	p := start(t)
	p.apply(fastScaling)
	p.apply(`
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: load}
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/max-scale: "4"
    spec:
      containerConcurrency: 2
      containers:
      - image: ko://github.com/tide-run/tide/test/apps/conformance
`)
	p.waitReady("ksvc", "load")

	var ok, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	// run keeps workers sending requests until stop is closed.
	run := func(workers int, stop <-chan struct{}) {
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					code, body, err := p.request("load.default.localhost", "/sleep?ms=50")
					if err != nil || code != 200 {
						failed.Add(1)
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%d %v %s", code, err, body))
						mu.Unlock()
						continue
					}
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
	}
	// Scale out: load runs until the revision has at least 2 instances (an event, not a fixed window, so a slow
	// machine only takes longer), or fails after a generous deadline. The watcher owns maxActual until it returns
	// (done), so the test reads it without a race.
	var maxActual int64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer close(stop)
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if _, a := p.replicas("load-00001"); a > maxActual {
				maxActual = a
			}
			if maxActual >= 2 {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	run(8, stop)
	<-done
	if maxActual < 2 {
		t.Fatalf("8 concurrent requests with containerConcurrency 2 ran on at most %d instance(s) within 60s", maxActual)
	}
	lighter := make(chan struct{})
	time.AfterFunc(3*time.Second, func() { close(lighter) })
	run(1, lighter) // lighter load, then none: the revision must go back to zero
	p.eventually("scale to zero", 30*time.Second, func() string {
		if d, a := p.replicas("load-00001"); d != 0 || a != 0 {
			return fmt.Sprintf("desired %d actual %d", d, a)
		}
		return ""
	})
	// From zero under load: until the first request after the cold start succeeded and a few more followed.
	fromZero := make(chan struct{})
	before := ok.Load()
	go func() {
		defer close(fromZero)
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && ok.Load() < before+16; {
			time.Sleep(20 * time.Millisecond)
		}
	}()
	run(8, fromZero)
	if ok.Load() < before+16 {
		t.Fatalf("from zero under load: %d requests succeeded within 60s", ok.Load()-before)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed while scaling: %v", failed.Load(), failed.Load()+ok.Load(), failures[:min(5, len(failures))])
	}
	t.Logf("%d requests, max %d instances, no failures", ok.Load(), maxActual)
}

// TestGracefulShutdown: shutting tide down lets an in-flight request finish, and leaves no process running.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	p := startIn(t, dir)
	p.apply(helloService)
	p.waitReady("ksvc", "hello")
	insts := p.srv.Serving().Instances("default", "hello-00001")
	if len(insts) != 1 || insts[0].PID <= 0 {
		t.Fatalf("instances %+v", insts)
	}
	pid := insts[0].PID
	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, body, err := p.request("hello.default.localhost", "/sleep?ms=1500")
		done <- result{code, body, err}
	}()
	p.eventually("request in flight", 10*time.Second, func() string {
		if in := p.srv.Serving().Instances("default", "hello-00001"); len(in) != 1 || in[0].InFlight != 1 {
			return fmt.Sprintf("instances %+v", in)
		}
		return ""
	})
	if err := p.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || r.code != 200 || !strings.Contains(r.body, "hello-00001") {
		t.Fatalf("in-flight request during shutdown: %d %v %q", r.code, r.err, r.body)
	}
	if err := processExists(pid); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("instance process %d still exists after shutdown: %v", pid, err)
	}

	// A restart on the same data dir serves the service again, and it never stops claiming Ready.
	p2 := startIn(t, dir)
	if s, r, m := cond(p2.get("ksvc", "hello"), "Ready"); s != "True" {
		t.Fatalf("after restart: Ready=%s %s %s", s, r, m)
	}
	p2.eventually("served after restart", 20*time.Second, func() string {
		code, body, err := p2.request("hello.default.localhost", "/")
		if err != nil || code != 200 || strings.TrimSpace(body) != "hello-00001" {
			return fmt.Sprintf("%d %v %q", code, err, body)
		}
		return ""
	})
}
