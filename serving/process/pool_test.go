package process

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

const conformanceImage = "ko://github.com/tide-run/tide/test/apps/conformance"

// testBuilder is shared by the tests of this binary so the conformance program is built once.
var testBuilder *Builder

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tide-process-test-")
	if err != nil {
		panic(err)
	}
	testBuilder, err = NewBuilder(BuilderOptions{CacheDir: dir})
	if err != nil {
		panic(err)
	}
	if _, err := testBuilder.Build(context.Background(), ".", conformanceImage); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// mapResolver stands in for the control plane's store (another package), holding Secrets and ConfigMaps in maps.
type mapResolver struct {
	secrets    map[string]map[string][]byte
	configMaps map[string]map[string]string
}

func (r mapResolver) SecretData(_ context.Context, ns, name string) (map[string][]byte, error) {
	if d, ok := r.secrets[ns+"/"+name]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("secret %s/%s: %w", ns, name, ErrNotFound)
}

func (r mapResolver) ConfigMapData(_ context.Context, ns, name string) (map[string]string, error) {
	if d, ok := r.configMaps[ns+"/"+name]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("configmap %s/%s: %w", ns, name, ErrNotFound)
}

func testSpec(c corev1.Container) Spec {
	return Spec{
		Namespace: "default", Service: "svc", Configuration: "svc", Revision: "svc-00001", Dir: ".",
		RevisionSpec: servingv1.RevisionSpec{PodSpec: corev1.PodSpec{Containers: []corev1.Container{c}},
			TimeoutSeconds: ptr.To[int64](10)},
	}
}

func newTestPool(t *testing.T, opts Options) *Pool {
	t.Helper()
	if opts.Builder == nil {
		opts.Builder = testBuilder
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readyInstance(t *testing.T, p *Pool) InstanceInfo {
	t.Helper()
	eventually(t, 10*time.Second, "a ready instance", func() bool { return p.ReadyCount() >= 1 })
	for _, i := range p.Instances() {
		if i.Ready {
			return i
		}
	}
	t.Fatal("no ready instance listed")
	return InstanceInfo{}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestRuntimeContractEnv(t *testing.T) {
	wd := t.TempDir()
	p := newTestPool(t, Options{
		Spec: testSpec(corev1.Container{
			Image:      conformanceImage,
			WorkingDir: wd,
			Ports:      []corev1.ContainerPort{{ContainerPort: 8080}},
			Env: []corev1.EnvVar{
				{Name: "GREETING", Value: "hello"},
				{Name: "EXPANDED", Value: "$(GREETING) world $$(GREETING) $(UNDEFINED)"},
				{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
				{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "mode"}}},
				{Name: "OPTIONAL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Key: "k", Optional: ptr.To(true)}}},
				{Name: "PORT", Value: "1"}, // reserved: the runtime contract wins
				{Name: "FROM_CM", Value: "env wins"},
			},
			EnvFrom: []corev1.EnvFromSource{
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}, Prefix: "CM_"},
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}},
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr.To(true)}},
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "more"}}},
			},
		}),
		Resolver: mapResolver{
			secrets:    map[string]map[string][]byte{"default/db": {"password": []byte("s3cret")}},
			configMaps: map[string]map[string]string{"default/cfg": {"mode": "fast"}, "default/more": {"FROM_CM": "configmap", "bad key": "x"}},
		},
	})
	p.SetScale(1)
	inst := readyInstance(t, p)
	var env map[string]string
	getJSON(t, "http://"+inst.Addr+"/env", &env)
	want := map[string]string{
		"PORT":            fmt.Sprint(inst.Port),
		"K_SERVICE":       "svc",
		"K_CONFIGURATION": "svc",
		"K_REVISION":      "svc-00001",
		"GREETING":        "hello",
		"EXPANDED":        "hello world $(GREETING) $(UNDEFINED)",
		"DB_PASSWORD":     "s3cret",
		"MODE":            "fast",
		"CM_mode":         "fast",
		"password":        "s3cret",
		"FROM_CM":         "env wins",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["bad key"]; ok {
		t.Errorf("invalid env name from envFrom should be skipped")
	}
	if _, ok := env["OPTIONAL"]; ok {
		t.Errorf("optional env from a missing secret should be unset")
	}
	if inst.Port == 8080 {
		t.Errorf("instance should get a free port, not containerPort")
	}
	// The program printed its start-up line, which is kept in the ring and the per-instance log file.
	eventually(t, 5*time.Second, "start-up log line", func() bool {
		for _, l := range p.Logs(100, "") {
			if strings.Contains(l.Text, "listening on") {
				return true
			}
		}
		return false
	})
	b, err := os.ReadFile(filepath.Join(p.LogDir(), inst.ID+".log"))
	if err != nil || !strings.Contains(string(b), "listening on") {
		t.Errorf("log file: %q, %v", b, err)
	}
}

func TestMissingSecretIsConfigError(t *testing.T) {
	p := newTestPool(t, Options{
		Spec: testSpec(corev1.Container{Image: conformanceImage, Env: []corev1.EnvVar{
			{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}}}),
		Resolver: mapResolver{},
	})
	p.SetScale(1)
	eventually(t, 5*time.Second, "CreateContainerConfigError", func() bool {
		return p.Status().Reason == "CreateContainerConfigError"
	})
	st := p.Status()
	if !st.Failed || !strings.Contains(st.Message, "spec.containers[0].env[0].valueFrom.secretKeyRef") ||
		!strings.Contains(st.Message, `secret "db"`) {
		t.Fatalf("status %+v", st)
	}
}

func TestCrashShowsReasonAndLastLines(t *testing.T) {
	p := newTestPool(t, Options{
		Spec:           testSpec(corev1.Container{Image: conformanceImage, Env: []corev1.EnvVar{{Name: "CONFORMANCE_MODE", Value: "crash"}}}),
		BackoffInitial: 20 * time.Millisecond,
	})
	var changes atomic.Int64
	p.Subscribe(func(e Event) {
		if e.Type == StatusChanged {
			changes.Add(1)
		}
	})
	p.SetScale(1)
	eventually(t, 10*time.Second, "two restarts", func() bool { return p.Status().Restarts >= 2 })
	if changes.Load() == 0 {
		t.Fatal("no StatusChanged event for a crashing program")
	}
	st := p.Status()
	if !st.Failed || st.Reason != "ExitCode3" || st.LastExitCode != 3 || st.Ready != 0 {
		t.Fatalf("status %+v", st)
	}
	if !strings.Contains(st.Message, "missing DATABASE_URL") {
		t.Fatalf("message lacks the program's last line: %q", st.Message)
	}
}

func TestNeverListeningMissesProgressDeadline(t *testing.T) {
	p := newTestPool(t, Options{
		Spec:             testSpec(corev1.Container{Image: conformanceImage, Env: []corev1.EnvVar{{Name: "CONFORMANCE_MODE", Value: "never-listen"}}}),
		ProgressDeadline: 300 * time.Millisecond,
	})
	p.SetScale(1)
	eventually(t, 10*time.Second, "ProgressDeadlineExceeded", func() bool { return p.Status().Reason == "ProgressDeadlineExceeded" })
	st := p.Status()
	if !st.Failed || st.EverReady || !strings.Contains(st.Message, "configured never to listen") {
		t.Fatalf("status %+v", st)
	}
}

func TestLivenessFailureRestarts(t *testing.T) {
	p := newTestPool(t, Options{
		Spec: testSpec(corev1.Container{Image: conformanceImage, LivenessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/status/500"}},
			PeriodSeconds: 1, FailureThreshold: 1,
		}}),
	})
	var mu sync.Mutex
	var reasons []string
	p.Subscribe(func(e Event) {
		if e.Type == StatusChanged {
			mu.Lock()
			reasons = append(reasons, p.Status().Reason)
			mu.Unlock()
		}
	})
	p.SetScale(1)
	first := readyInstance(t, p)
	eventually(t, 10*time.Second, "a liveness restart", func() bool { return p.Status().Restarts >= 1 })
	mu.Lock()
	got := strings.Join(reasons, ",")
	mu.Unlock()
	if !strings.Contains(got, "LivenessProbeFailed") {
		t.Fatalf("status reasons seen: %q", got)
	}
	second := readyInstance(t, p)
	if second.PID == first.PID {
		t.Fatal("the instance was not restarted")
	}
}

func TestHTTPReadinessProbe(t *testing.T) {
	p := newTestPool(t, Options{
		Spec: testSpec(corev1.Container{Image: conformanceImage, ReadinessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/status/503"}},
		}}),
		ProgressDeadline: 300 * time.Millisecond,
	})
	p.SetScale(1)
	eventually(t, 10*time.Second, "ProgressDeadlineExceeded", func() bool { return p.Status().Reason == "ProgressDeadlineExceeded" })
	if st := p.Status(); st.Ready != 0 || !strings.Contains(st.Message, "statuscode: 503") {
		t.Fatalf("status %+v", st)
	}
}

// TestDrainLetsInFlightFinish plays the data plane's part by hand: admit a request, scale to zero, and check the
// instance refuses new admissions, answers the admitted request, and only then stops.
func TestDrainLetsInFlightFinish(t *testing.T) {
	p := newTestPool(t, Options{Spec: testSpec(corev1.Container{Image: conformanceImage})})
	var mu sync.Mutex
	var events []string
	p.Subscribe(func(e Event) {
		if e.Type == StatusChanged {
			return
		}
		mu.Lock()
		events = append(events, e.Type.String())
		mu.Unlock()
	})
	p.SetScale(1)
	readyInstance(t, p)
	var inst *Instance
	p.mu.Lock()
	inst = p.slots[0].current
	p.mu.Unlock()
	if !inst.TryAcquire() {
		t.Fatal("acquire")
	}
	done := make(chan error, 1)
	go func() {
		defer inst.Release()
		resp, err := http.Get("http://" + inst.Addr + "/sleep?ms=300")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("status %s", resp.Status)
			}
		}
		done <- err
	}()
	eventually(t, 5*time.Second, "request in flight", func() bool { return inst.InFlight() == 1 })
	p.SetScale(0)
	eventually(t, 5*time.Second, "draining", func() bool { return inst.Draining() })
	if inst.TryAcquire() {
		t.Fatal("a draining instance admitted a request")
	}
	if err := <-done; err != nil {
		t.Fatalf("in-flight request failed during drain: %v", err)
	}
	<-inst.exited
	eventually(t, 5*time.Second, "Gone event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(events, ",") == "Ready,Draining,Gone"
	})
}

func TestCommandAndGracePeriod(t *testing.T) {
	// A program that ignores SIGTERM is killed after terminationGracePeriodSeconds.
	spec := testSpec(corev1.Container{Image: "shell", Command: []string{"sh", "-c", "trap '' TERM; echo $(MSG); while :; do sleep 0.05; done"},
		Env: []corev1.EnvVar{{Name: "MSG", Value: "stubborn"}}})
	spec.RevisionSpec.TerminationGracePeriodSeconds = ptr.To[int64](1)
	p := newTestPool(t, Options{Spec: spec})
	p.SetScale(1)
	eventually(t, 5*time.Second, "output", func() bool {
		l := p.Logs(1, "")
		return len(l) == 1 && l[0].Text == "stubborn"
	})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("stopped after %s, before the grace period", d)
	}
}

func TestLimitsReportedPlainly(t *testing.T) {
	p := newTestPool(t, Options{Spec: testSpec(corev1.Container{Image: conformanceImage, Resources: corev1.ResourceRequirements{
		Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}})})
	st := p.Status()
	if st.Limits == "" {
		t.Fatal("limits set but not reported")
	}
	t.Logf("limits: %s", st.Limits)
	if l := containerLimits(&p.spec.RevisionSpec.Containers[0]); l.cpuMax != "50000 100000" || l.memoryMax != "67108864" {
		t.Fatalf("limits %+v", l)
	}
}

func TestInvalidSpecNamesField(t *testing.T) {
	_, err := New(Options{Spec: testSpec(corev1.Container{Image: "docker.io/library/nginx"})})
	if err == nil || !strings.Contains(err.Error(), "spec.containers[0].image") {
		t.Fatalf("err = %v", err)
	}
}

func TestExpand(t *testing.T) {
	vals := map[string]string{"A": "x", "B": "y"}
	for in, want := range map[string]string{
		"$(A)":        "x",
		"$(A)-$(B)":   "x-y",
		"$$(A)":       "$(A)",
		"$(C)":        "$(C)",
		"$(A":         "$(A",
		"plain $ end": "plain $ end",
		"$":           "$",
	} {
		if got := expand(in, vals); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLimitsFallBackWhenKernelRefuses points the Pool at a directory that looks like a cgroup v2 root but is not
// one: the limits are written, the kernel refuses to start the process inside it, and the instance runs without
// limits while the status says so plainly.
func TestLimitsFallBackWhenKernelRefuses(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpuset cpu io memory pids\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newTestPool(t, Options{CgroupRoot: root, Spec: testSpec(corev1.Container{Image: conformanceImage, Resources: corev1.ResourceRequirements{
		Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("32Mi")}}})})
	if st := p.Status(); !strings.HasPrefix(st.Limits, "enforced with cgroup v2") {
		t.Fatalf("limits before start: %q", st.Limits)
	}
	p.SetScale(1)
	inst := readyInstance(t, p)
	st := p.Status()
	if !strings.Contains(st.Limits, "resource limits not enforced") || !strings.Contains(st.Limits, "starting inside") {
		t.Fatalf("limits after start: %q", st.Limits)
	}
	matches, _ := filepath.Glob(filepath.Join(root, "*", "tide", inst.ID, "cpu.max"))
	if len(matches) == 0 {
		matches, _ = filepath.Glob(filepath.Join(root, "tide", inst.ID, "cpu.max"))
	}
	if len(matches) != 1 {
		t.Fatalf("cpu.max not written under %s", root)
	}
	if b, _ := os.ReadFile(matches[0]); string(b) != "25000 100000" {
		t.Fatalf("cpu.max = %q", b)
	}
}
