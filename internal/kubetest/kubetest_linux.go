// Linux only (the _linux suffix): CI runs these tests on Linux, and type-checking kube-apiserver for the macOS and
// Windows vet runs of .ci/run would cost minutes of CI for nothing.

package kubetest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	cacheddiscovery "k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/controller-manager/pkg/informerfactory"
	kubeapiservertesting "k8s.io/kubernetes/cmd/kube-apiserver/app/testing"
	"k8s.io/kubernetes/pkg/controller/garbagecollector"
)

// Cluster is a running API server (and garbage collector).
type Cluster struct {
	// Config is an admin client configuration for the API server (TLS, loopback token in system:masters).
	Config *rest.Config
}

// etcdMu serializes picking free ports and binding them, so parallel tests of this process do not race each
// other for the same port (another process still can; Start retries then).
var etcdMu sync.Mutex

// startEtcd starts a single-member etcd on loopback and returns its client URL. The data directory is the test's
// temporary directory; fsync is off (the data is thrown away with the test).
func startEtcd(t testing.TB) string {
	t.Helper()
	etcdMu.Lock()
	defer etcdMu.Unlock()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			t.Fatal(err)
		}
		cfg := embed.NewConfig()
		cfg.UnsafeNoFsync = true
		clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))}
		peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peerURL}, []url.URL{peerURL}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{clientURL}, []url.URL{clientURL}
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zaptest.NewLogger(t, zaptest.Level(zapcore.ErrorLevel)).Named("etcd"))
		cfg.Dir = t.TempDir()
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			lastErr = err // most likely a port taken between freePorts and the bind
			continue
		}
		t.Cleanup(e.Close)
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(60 * time.Second):
			e.Server.Stop()
			t.Fatal("etcd did not become ready in 60 s")
		}
		return clientURL.String()
	}
	t.Fatalf("starting etcd: %v", lastErr)
	return ""
}

func freePorts(n int) ([]int, error) {
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// Start runs etcd, kube-apiserver (RBAC authorization) and the garbage collector until the test ends.
func Start(t *testing.T) *Cluster {
	t.Helper()
	etcdURL := startEtcd(t)
	storage := storagebackend.NewDefaultConfig(path.Join("/tide-kubetest", "registry"), nil)
	storage.Transport.ServerList = []string{etcdURL}
	srv, err := kubeapiservertesting.StartTestServer(t, kubeapiservertesting.NewDefaultTestServerOptions(),
		[]string{
			// As on a production cluster: RBAC decides, and setting blockOwnerDeletion on an owner reference needs
			// permission to update the owner's finalizers.
			"--authorization-mode=RBAC",
			"--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
			// No token controller runs here to mint ServiceAccount tokens for Pods.
			"--disable-admission-plugins=ServiceAccount",
		}, storage)
	if err != nil {
		t.Fatalf("starting kube-apiserver: %v", err)
	}
	t.Cleanup(srv.TearDownFn)
	cfg := rest.CopyConfig(srv.ClientConfig)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side throttling in tests
	startGC(t, cfg)
	return &Cluster{Config: cfg}
}

// startGC runs kube-controller-manager's garbage collector against the API server, wired as Kubernetes'
// garbage-collector integration tests wire it, with a 1 s resync so newly installed CRDs are watched quickly.
func startGC(t *testing.T, cfg *rest.Config) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	cs := kubernetes.NewForConfigOrDie(cfg)
	md := metadata.NewForConfigOrDie(cfg)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cacheddiscovery.NewMemCacheClient(cs.Discovery()))
	mapper.Reset()
	shared := informers.NewSharedInformerFactory(cs, 0)
	mdInformers := metadatainformer.NewSharedInformerFactory(md, 0)
	started := make(chan struct{})
	close(started)
	gc, err := garbagecollector.NewGarbageCollector(ctx, cs, md, mapper, garbagecollector.DefaultIgnoredResources(),
		informerfactory.NewInformerFactory(shared, mdInformers), started)
	if err != nil {
		t.Fatalf("garbage collector: %v", err)
	}
	const period = time.Second
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); gc.Run(ctx, 2, period) }()
	go func() { defer wg.Done(); gc.Sync(ctx, cs.Discovery(), period) }()
	go func() {
		defer wg.Done()
		tk := time.NewTicker(period)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				mapper.Reset() // also invalidates the cached discovery, so new CRDs are seen
			}
		}
	}()
	go func() { wg.Wait(); close(done) }()
}
