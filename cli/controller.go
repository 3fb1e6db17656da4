package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tide-run/tide/eventing/kubecontroller"
)

// newControllerCommand is `tide controller`: controllers that run on a Kubernetes cluster (deploy/knative/), not
// inside `tide up`.
func newControllerCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run a Kubernetes controller for tide's resources on a cluster",
	}
	cmd.AddCommand(newRocketMQSourceControllerCommand())
	return cmd
}

func newRocketMQSourceControllerCommand() *cobra.Command {
	var (
		kubeconfig, namespace, image, httpAddr, clusterDomain string
		nameServers                                           []string
		workers                                               int
		resync                                                time.Duration
		leaderElect                                           bool
		leaseNamespace                                        string
	)
	cmd := &cobra.Command{
		Use:   "rocketmqsource",
		Short: "Reconcile RocketMQSources on a Kubernetes cluster into adapter Deployments",
		Long: "Watches RocketMQSources (sources.knative.dev/v1alpha1 and the 2020 sources.eventing.knative.dev/v1alpha1)\n" +
			"and runs each as a Deployment of `tide adapter rocketmq`: the sink is resolved as Knative sources resolve it\n" +
			"(a Broker's, Service's or other Addressable's status.address.url, or a URI) and passed as K_SINK; deleting\n" +
			"the source deletes the Deployment (owner reference). Status: SinkProvided, Deployed, Ready, sinkUri.\n" +
			"Install with `ko apply -f deploy/knative/`; see docs/moving-to-knative.md.\n\n" +
			"In a pod it uses the in-cluster configuration; elsewhere --kubeconfig, $KUBECONFIG or ~/.kube/config.\n" +
			"It serves /healthz, /readyz and /metrics on --http-addr. Reasons it records as Kubernetes Events on the\n" +
			"sources (kubectl get events): DeploymentCreated, DeploymentUpdated, DeploymentDeleted, InvalidSpec,\n" +
			"SinkNotFound, DeploymentConflict.\n\n" +
			"With --leader-elect several replicas can run: the one holding the Lease tide-rocketmqsource-controller\n" +
			"(in --leader-elect-namespace) reconciles and is ready, the others wait and take over when it goes.",
		Example: `  # on a workstation, against the current kubectl context:
  tide controller rocketmqsource --adapter-image ghcr.io/example/tide:v1 --default-name-servers rocketmq-nameserver.rocketmq:9876

  # two replicas on a cluster, one active (deploy/knative/500-controller.yaml):
  tide controller rocketmqsource --leader-elect --leader-elect-namespace tide-system`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if image == "" {
				image = os.Getenv("TIDE_ADAPTER_IMAGE")
			}
			if image == "" {
				return &exitError{code: 2, err: errors.New("--adapter-image (or TIDE_ADAPTER_IMAGE) is required: the tide image the adapter Deployments run")}
			}
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			rules.ExplicitPath = kubeconfig
			cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("no Kubernetes configuration (not in a pod, and no usable --kubeconfig, $KUBECONFIG or ~/.kube/config): %w", err)}
			}
			cfg.UserAgent = "tide-rocketmqsource-controller"
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			var servers []string
			for _, s := range nameServers {
				for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
					servers = append(servers, p)
				}
			}
			var election *kubecontroller.LeaderElection
			if leaderElect {
				election = &kubecontroller.LeaderElection{Namespace: leaseNamespace, Identity: replicaIdentity()}
			}
			c, err := kubecontroller.New(kubecontroller.Options{
				Config: cfg, AdapterImage: image, DefaultNameServers: servers, Namespace: namespace,
				Resync: resync, Logger: log, ClusterDomain: clusterDomain, LeaderElection: election,
			})
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if httpAddr != "" {
				ln, err := net.Listen("tcp", httpAddr)
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--http-addr: %w", err)}
				}
				hs := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 5 * time.Second}
				go func() { _ = hs.Serve(ln) }()
				defer func() {
					sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					_ = hs.Shutdown(sctx)
				}()
				log.Info("serving /healthz, /readyz and /metrics", "addr", ln.Addr().String())
			}
			return c.Run(ctx, workers)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)")
	f.StringVar(&namespace, "namespace", "", "watch only this namespace (default: all)")
	f.StringVar(&image, "adapter-image", "", "image of the adapter containers: the tide image (default $TIDE_ADAPTER_IMAGE)")
	f.StringSliceVar(&nameServers, "default-name-servers", nil, "RocketMQ name servers for sources without spec.nameServers")
	f.StringVar(&httpAddr, "http-addr", ":8080", "address serving /healthz, /readyz and /metrics (empty: none)")
	f.StringVar(&clusterDomain, "cluster-domain", "cluster.local", "DNS suffix of Kubernetes Services, for sinks that are Services")
	f.IntVar(&workers, "workers", 2, "sources reconciled at once")
	f.DurationVar(&resync, "resync", 10*time.Minute, "re-reconcile every source this often even without changes")
	f.BoolVar(&leaderElect, "leader-elect", false, "reconcile only while holding the Lease "+kubecontroller.ControllerName+" (for several replicas)")
	f.StringVar(&leaseNamespace, "leader-elect-namespace", envOr("POD_NAMESPACE", "tide-system"), "namespace of the leader election Lease (default $POD_NAMESPACE, else tide-system)")
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// replicaIdentity names this replica in the Lease: the pod name ($POD_NAME, else the host name) and a random
// suffix, so a restarted replica is a new holder (as kube-controller-manager's identities are).
func replicaIdentity() string {
	name := os.Getenv("POD_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return name + "_" + hex.EncodeToString(b)
}
