package kubecontroller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	appsclient "k8s.io/client-go/kubernetes/typed/apps/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
)

// Labels on every adapter Deployment (and its Pods).
const (
	// LabelController marks what this controller manages; its informer watches only Deployments carrying it.
	LabelController = "sources.knative.dev/controller"
	// ControllerName is LabelController's value.
	ControllerName = "tide-rocketmqsource-controller"
	// LabelSourceName is the source's name (Knative's sources use the same key).
	LabelSourceName = "sources.knative.dev/name"
	// LabelSource is Knative's "which kind of source" label.
	LabelSource = "sources.knative.dev/source"
)

// The resources the controller reconciles.
var (
	GVR       = v1alpha1.SchemeGroupVersion.WithResource(v1alpha1.Resource)
	LegacyGVR = v1alpha1.LegacyGroupVersion.WithResource(v1alpha1.Resource)
)

// Options configure a Controller.
type Options struct {
	// Config reaches the API server (in-cluster config, or a kubeconfig).
	Config *rest.Config
	// AdapterImage is the image of the adapter container: the tide image (`tide adapter rocketmq` is its
	// subcommand). Required.
	AdapterImage string
	// DefaultNameServers fill a source's empty spec.nameServers (on tide the embedded broker's; on a cluster the
	// Apache RocketMQ name server Service, e.g. rocketmq-nameserver.rocketmq:9876). Empty: such sources are
	// InvalidSpec.
	DefaultNameServers []string
	// Namespace limits the controller to one namespace; empty watches all.
	Namespace string
	// Resync re-reconciles every source this often even without changes (default 10 min).
	Resync time.Duration
	// Logger (default: discard).
	Logger *slog.Logger
	// ClusterDomain is the DNS suffix of Kubernetes Services (default cluster.local).
	ClusterDomain string
	// LeaderElection, when set, makes Run reconcile only while it holds a Lease (leaderelection.go), so several
	// replicas can run with one active.
	LeaderElection *LeaderElection
}

// Controller reconciles RocketMQSources into adapter Deployments.
type Controller struct {
	opts    Options
	log     *slog.Logger
	dyn     dynamic.Interface
	apps    appsclient.AppsV1Interface
	disco   discovery.DiscoveryInterface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	queue   workqueue.TypedRateLimitingInterface[key]
	metrics *metrics

	dynFactory     dynamicinformer.DynamicSharedInformerFactory
	deployInformer cache.SharedIndexInformer
	deployments    appslisters.DeploymentLister
	sources        map[schema.GroupVersionResource]cache.GenericLister

	tracker  *tracker
	ready    atomic.Bool
	core     corev1client.CoreV1Interface
	recorder record.EventRecorder // set by run; a no-op before
}

// key names one source: its group (current or 2020), namespace and name.
type key struct {
	Group, Namespace, Name string
}

func (k key) String() string { return k.Group + ":" + k.Namespace + "/" + k.Name }

// New builds a Controller; Run starts it.
func New(opts Options) (*Controller, error) {
	if opts.Config == nil {
		return nil, errors.New("kubecontroller: Options.Config is required")
	}
	if strings.TrimSpace(opts.AdapterImage) == "" {
		return nil, errors.New("kubecontroller: an adapter image is required (--adapter-image or TIDE_ADAPTER_IMAGE)")
	}
	if opts.Resync <= 0 {
		opts.Resync = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ClusterDomain == "" {
		opts.ClusterDomain = "cluster.local"
	}
	dyn, err := dynamic.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("kubecontroller: dynamic client: %w", err)
	}
	// Only the clients used: the full clientset and informer factory would link every API group into tide.
	apps, err := appsclient.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("kubecontroller: apps/v1 client: %w", err)
	}
	core, err := corev1client.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("kubecontroller: core/v1 client: %w", err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("kubecontroller: discovery client: %w", err)
	}
	c := &Controller{
		opts:     opts,
		log:      opts.Logger.With("component", "rocketmqsource-controller"),
		dyn:      dyn,
		apps:     apps,
		core:     core,
		recorder: &record.FakeRecorder{},
		disco:    disco,
		mapper:   restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco)),
		metrics:  newMetrics(),
		sources:  map[schema.GroupVersionResource]cache.GenericLister{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[key](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[key]{Name: "rocketmqsources"}),
	}
	c.metrics.depth = func() int { return c.queue.Len() }
	c.dynFactory = dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, opts.Resync, opts.Namespace, nil)
	selector := labels.Set{LabelController: ControllerName}.String()
	c.deployInformer = cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) {
			lo.LabelSelector = selector
			return apps.Deployments(opts.Namespace).List(ctx, lo)
		},
		WatchFuncWithContext: func(ctx context.Context, lo metav1.ListOptions) (watch.Interface, error) {
			lo.LabelSelector = selector
			return apps.Deployments(opts.Namespace).Watch(ctx, lo)
		},
	}, &appsv1.Deployment{}, opts.Resync, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	c.deployments = appslisters.NewDeploymentLister(c.deployInformer.GetIndexer())
	c.tracker = newTracker(c.dynFactory, c.enqueue, c.log)
	return c, nil
}

// Run watches and reconciles with workers goroutines until ctx ends (with Options.LeaderElection: while it leads).
// It returns an error when neither RocketMQSource CRD is installed, the caches do not sync, or it lost its lease.
func (c *Controller) Run(ctx context.Context, workers int) error {
	if c.opts.LeaderElection != nil {
		return c.runElected(ctx, workers)
	}
	return c.run(ctx, workers)
}

func (c *Controller) run(ctx context.Context, workers int) error {
	defer c.queue.ShutDown()
	rec, stopEvents := newRecorder(ctx, c.core)
	defer stopEvents()
	c.recorder = rec
	served := c.servedGVRs()
	if len(served) == 0 {
		return fmt.Errorf("kubecontroller: the API server serves no RocketMQSource (%s or %s): apply deploy/knative/300-rocketmqsource-crd.yaml first", GVR.GroupResource(), LegacyGVR.GroupResource())
	}
	for _, gvr := range served {
		inf := c.dynFactory.ForResource(gvr)
		group := gvr.Group
		if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { c.enqueueObject(group, o) },
			UpdateFunc: func(_, o any) { c.enqueueObject(group, o) },
			DeleteFunc: func(o any) { c.enqueueObject(group, o) },
		}); err != nil {
			return fmt.Errorf("kubecontroller: %w", err)
		}
		c.sources[gvr] = inf.Lister()
		c.log.Info("watching", "resource", gvr.String())
	}
	if _, err := c.deployInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueOwner,
		UpdateFunc: func(_, o any) { c.enqueueOwner(o) },
		DeleteFunc: c.enqueueOwner,
	}); err != nil {
		return fmt.Errorf("kubecontroller: %w", err)
	}
	c.tracker.start(ctx.Done())
	c.dynFactory.Start(ctx.Done())
	defer c.dynFactory.Shutdown()
	go c.deployInformer.RunWithContext(ctx)
	for gvr, ok := range c.dynFactory.WaitForCacheSync(ctx.Done()) {
		if !ok && c.sources[gvr] != nil {
			return fmt.Errorf("kubecontroller: the %s cache did not sync", gvr.Resource)
		}
	}
	if !cache.WaitForCacheSync(ctx.Done(), c.deployInformer.HasSynced) {
		return fmt.Errorf("kubecontroller: the deployments cache did not sync")
	}
	c.ready.Store(true)
	c.log.Info("started", "workers", workers, "namespace", c.opts.Namespace, "adapterImage", c.opts.AdapterImage)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.processNext(ctx) {
			}
		}()
	}
	<-ctx.Done()
	c.ready.Store(false)
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

// Ready reports whether the caches synced and workers run (the readiness probe).
func (c *Controller) Ready() bool { return c.ready.Load() }

// servedGVRs asks discovery which of the two groups the API server serves (the 2020 CRD is optional).
func (c *Controller) servedGVRs() []schema.GroupVersionResource {
	var out []schema.GroupVersionResource
	for _, gvr := range []schema.GroupVersionResource{GVR, LegacyGVR} {
		rl, err := c.disco.ServerResourcesForGroupVersion(gvr.GroupVersion().String())
		if err != nil {
			continue
		}
		for _, r := range rl.APIResources {
			if r.Name == gvr.Resource {
				out = append(out, gvr)
				break
			}
		}
	}
	return out
}

func (c *Controller) enqueue(k key) { c.queue.Add(k) }

func (c *Controller) enqueueObject(group string, o any) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	m, err := metaAccessor(o)
	if err != nil {
		return
	}
	c.queue.Add(key{Group: group, Namespace: m.GetNamespace(), Name: m.GetName()})
}

// enqueueOwner enqueues the source that controls a Deployment, so a Deployment's availability (or its deletion
// by hand) reaches the source's status.
func (c *Controller) enqueueOwner(o any) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	d, ok := o.(*appsv1.Deployment)
	if !ok {
		return
	}
	ref := metav1.GetControllerOf(d)
	if ref == nil || ref.Kind != v1alpha1.Kind {
		return
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || (gv.Group != v1alpha1.GroupName && gv.Group != v1alpha1.LegacyGroupName) {
		return
	}
	c.queue.Add(key{Group: gv.Group, Namespace: d.Namespace, Name: ref.Name})
}

func (c *Controller) processNext(ctx context.Context) bool {
	k, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(k)
	start := time.Now()
	err := c.reconcile(ctx, k)
	c.metrics.observe(err, time.Since(start))
	switch {
	case err == nil:
		c.queue.Forget(k)
	case errors.Is(err, errRequeue):
		c.queue.AddRateLimited(k) // waiting for something outside (a sink's address); not worth a warning
	default:
		c.log.Warn("reconcile failed; retrying", "source", k.String(), "err", err, "retries", c.queue.NumRequeues(k))
		c.queue.AddRateLimited(k)
	}
	return true
}

// errRequeue: the status says what is missing; try again later with backoff.
var errRequeue = errors.New("requeue")
