package kubecontroller_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/tide-run/tide/eventing/kubecontroller"
)

// kubectl runs the real kubectl's code (k8s.io/kubectl/pkg/cmd, in this test process) against cfg's API server
// through a kubeconfig, and returns its output. A fatal kubectl error (which would exit) fails the test.
func kubectl(t *testing.T, cfg *rest.Config, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	trust := "insecure-skip-tls-verify: true" // the loopback configuration of kube-apiserver trusts its own certificate
	switch {
	case len(cfg.TLSClientConfig.CAData) > 0:
		trust = "certificate-authority-data: " + base64.StdEncoding.EncodeToString(cfg.TLSClientConfig.CAData)
	case cfg.TLSClientConfig.CAFile != "":
		trust = "certificate-authority: " + cfg.TLSClientConfig.CAFile
	}
	if n := cfg.TLSClientConfig.ServerName; n != "" { // the loopback certificate's name
		trust += "\n    tls-server-name: " + n
	}
	doc := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: %s\n    %s\n"+
		"users:\n- name: k\n  user:\n    token: %s\ncontexts:\n- name: k\n  context: {cluster: k, user: k}\ncurrent-context: k\n",
		cfg.Host, trust, cfg.BearerToken)
	if err := os.WriteFile(kc, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	argv := append([]string{"kubectl", "--kubeconfig=" + kc, "--cache-dir=" + filepath.Join(dir, "cache")}, args...)
	cmd := kubectlcmd.NewKubectlCommand(kubectlcmd.KubectlOptions{Arguments: argv, IOStreams: streams,
		ConfigFlags: genericclioptions.NewConfigFlags(true).WithWarningPrinter(streams)})
	cmd.SetArgs(argv[1:])
	fatal := ""
	cmdutil.BehaviorOnFatal(func(msg string, _ int) { fatal = msg; panic("kubectl fatal") })
	defer cmdutil.DefaultBehaviorOnFatal()
	func() {
		defer func() {
			if r := recover(); r != nil && fatal == "" {
				panic(r)
			}
		}()
		if err := cmd.Execute(); err != nil {
			fatal = err.Error()
		}
	}()
	if fatal != "" {
		t.Fatalf("kubectl %s: %s\n%s", strings.Join(args, " "), fatal, errOut.String())
	}
	return out.String()
}

// checkEvents: `kubectl get events` lists the reasons the controller recorded on the sources (TYPE, REASON, OBJECT
// columns; the message of the creation too).
func checkEvents(t *testing.T, cfg *rest.Config) {
	t.Helper()
	waitFor(t, 30*time.Second, "kubectl get events to show the controller's reasons", func() (bool, string) {
		out := kubectl(t, cfg, "get", "events", "-n", "default")
		seen := map[string]bool{}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 4 {
				seen[f[1]+" "+f[2]+" "+f[3]] = true
			}
		}
		for _, want := range []string{"Warning SinkNotFound rocketmqsource/orders", "Normal DeploymentCreated rocketmqsource/orders",
			"Normal DeploymentUpdated rocketmqsource/orders", "Warning InvalidSpec rocketmqsource/broken"} {
			if !seen[want] {
				return false, out
			}
		}
		return strings.Contains(out, `Created Deployment "orders-rocketmqsource"`), out
	})
}

// checkLeaderElection runs two more controllers with leader election (as the ServiceAccount, so the Role in
// deploy/knative/ is what grants the Lease): one leads and is ready, the other waits, not ready; when the leader
// stops it releases the Lease and the other takes over at once.
func checkLeaderElection(t *testing.T, ctx context.Context, asController *rest.Config, admin *rest.Config) {
	t.Helper()
	kube := kubernetes.NewForConfigOrDie(admin)
	start := func(id string) (*kubecontroller.Controller, context.CancelFunc, chan error) {
		c, err := kubecontroller.New(kubecontroller.Options{
			Config: asController, AdapterImage: "registry.example/tide:test", Logger: slog.New(slog.DiscardHandler),
			LeaderElection: &kubecontroller.LeaderElection{Namespace: "tide-system", Identity: id,
				LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 100 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(cctx, 1) }()
		return c, cancel, done
	}
	holder := func() string {
		l, err := kube.CoordinationV1().Leases("tide-system").Get(ctx, kubecontroller.ControllerName, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return fmt.Sprint(err)
		}
		return *l.Spec.HolderIdentity
	}
	a, stopA, doneA := start("replica-a")
	waitFor(t, 30*time.Second, "replica-a to lead and be ready", func() (bool, string) {
		return holder() == "replica-a" && a.Ready(), holder()
	})
	b, stopB, doneB := start("replica-b")
	defer func() { stopB(); <-doneB }()
	time.Sleep(time.Second) // ten retry periods: b keeps trying and must not take the Lease
	if h := holder(); h != "replica-a" || b.Ready() {
		t.Fatalf("while replica-a leads: holder %s, replica-b ready %v", h, b.Ready())
	}
	stopA()
	if err := <-doneA; err != nil {
		t.Errorf("the leader's Run after its context ended: %v", err)
	}
	if a.Ready() {
		t.Error("the stopped leader is still ready")
	}
	waitFor(t, 3*time.Second, "replica-b to take the released Lease (well before the 4 s lease duration)", func() (bool, string) {
		return holder() == "replica-b" && b.Ready(), holder()
	})
}
