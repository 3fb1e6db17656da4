// Package kubectl_test drives tide with the real kubectl: k8s.io/kubectl/pkg/cmd at the project's Kubernetes
// module version, built once per run from ./cmd/kubectl (never a kubectl found on PATH), against a whole tide
// (server/servertest) through a generated kubeconfig.
package kubectl_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tide-run/tide/server"
	"github.com/tide-run/tide/server/servertest"
)

// kubectlBin is the kubectl built by TestMain.
var kubectlBin string

// The version the binary reports: the k8s.io modules' release (go.mod), as an official kubectl build stamps it.
const kubectlVersion = "v1.35.7"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tide-kubectl-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kubectlBin = filepath.Join(dir, "kubectl")
	_, self, _, _ := runtime.Caller(0)
	pkg := "k8s.io/component-base/version."
	ldflags := "-X " + pkg + "gitVersion=" + kubectlVersion + " -X " + pkg + "gitMajor=1 -X " + pkg + "gitMinor=35"
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", kubectlBin, "./cmd/kubectl")
	build.Dir = filepath.Dir(self)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building kubectl: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// kube is kubectl pointed at one tide.
type kube struct {
	t          testing.TB
	tide       *servertest.Server
	home       string // HOME: kubectl's discovery and HTTP caches stay inside the test
	kubeconfig string
	dir        string // working directory ("" = the test's own)
	env        []string
}

// startTide runs a whole tide on free ports and writes a kubeconfig for it: loopback over plain http, anonymous
// (kubectl sends a bearer token only over https; see withTLS for the token).
func startTide(t testing.TB, opts server.Options) *kube {
	t.Helper()
	s := servertest.RunServer(t, opts)
	k := &kube{t: t, tide: s, home: t.TempDir()}
	k.kubeconfig = filepath.Join(k.home, "kubeconfig")
	k.writeConfig(s.APIURL(), "", "")
	return k
}

func (k *kube) writeConfig(serverURL, caFile, token string) {
	cluster := "    server: " + serverURL + "\n"
	if caFile != "" {
		cluster += "    certificate-authority: " + caFile + "\n"
	}
	user := "  user: {}\n"
	if token != "" {
		user = "  user:\n    token: " + token + "\n"
	}
	doc := "apiVersion: v1\nkind: Config\nclusters:\n- name: tide\n  cluster:\n" + cluster +
		"users:\n- name: tide\n" + user +
		"contexts:\n- name: tide\n  context: {cluster: tide, user: tide, namespace: default}\ncurrent-context: tide\n"
	if err := os.WriteFile(k.kubeconfig, []byte(doc), 0o600); err != nil {
		k.t.Fatal(err)
	}
}

// run runs kubectl with args (and stdin when given); it returns stdout, stderr and the exit error.
func (k *kube) run(stdin string, args ...string) (string, string, error) {
	k.t.Helper()
	cmd := exec.Command(kubectlBin, args...)
	cmd.Dir = k.dir
	cmd.Env = append([]string{"HOME=" + k.home, "KUBECONFIG=" + k.kubeconfig, "PATH=" + os.Getenv("PATH"),
		"KUBECTL_KUBERC=false"}, k.env...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), errb.String(), err
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		k.t.Fatalf("kubectl %s: still running after 60 s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out.String(), errb.String())
		return "", "", nil
	}
}

// ok runs kubectl and fails the test unless it exits 0; it returns stdout.
func (k *kube) ok(args ...string) string {
	k.t.Helper()
	out, errOut, err := k.run("", args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// okIn is ok with a document on stdin (-f -).
func (k *kube) okIn(stdin string, args ...string) string {
	k.t.Helper()
	out, errOut, err := k.run(stdin, args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// fails runs kubectl, fails the test if it exits 0, and returns stderr.
func (k *kube) fails(stdin string, args ...string) string {
	k.t.Helper()
	out, errOut, err := k.run(stdin, args...)
	if err == nil {
		k.t.Fatalf("kubectl %s: succeeded, want an error\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out, errOut)
	}
	return errOut
}

// repoRoot is the repository's root directory.
func repoRoot(t testing.TB) string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "..")
}

// fields splits a table's lines into their whitespace-separated cells.
func fields(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			rows = append(rows, strings.Fields(l))
		}
	}
	return rows
}

// syncBuffer is a bytes.Buffer safe for a process writing while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs a long-lived kubectl (get -w) until the test ends; its output is in the returned buffer.
func (k *kube) start(args ...string) *syncBuffer {
	k.t.Helper()
	cmd := exec.Command(kubectlBin, args...)
	cmd.Env = []string{"HOME=" + k.home, "KUBECONFIG=" + k.kubeconfig, "PATH=" + os.Getenv("PATH")}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	k.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return out
}

// eventually polls cond every 50 ms until it holds or 30 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
