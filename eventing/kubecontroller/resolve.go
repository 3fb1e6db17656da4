package kubecontroller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// resolve turns a Destination into a URL the way Knative's resolver does for sources:
//   - uri alone must be absolute;
//   - ref to a Kubernetes Service (v1) is http://<name>.<namespace>.svc.<cluster domain>/ (the Service must exist);
//   - ref to anything else is an Addressable: its status.address.url (or the first status.addresses[].url), which
//     it publishes once it is ready;
//   - ref and uri together: uri is resolved relative to the ref's URL.
//
// The ref's namespace defaults to the source's. The referenced object is tracked: when it changes (a Broker becomes
// ready, a Service's URL changes), owner is reconciled again. caCerts is the Destination's CACerts, else the
// Addressable's status.address.CACerts.
func (c *Controller) resolve(ctx context.Context, owner key, namespace string, d duckv1.Destination) (u *apis.URL, caCerts string, err error) {
	if d.CACerts != nil {
		caCerts = *d.CACerts
	}
	if d.Ref == nil {
		if d.URI == nil {
			return nil, "", fmt.Errorf("neither ref nor uri is set")
		}
		if !d.URI.URL().IsAbs() || d.URI.Host == "" {
			return nil, "", fmt.Errorf("uri %q is not an absolute URL and there is no ref to resolve it against", d.URI.String())
		}
		return d.URI, caCerts, nil
	}
	ref := d.Ref
	ns := ref.Namespace
	if ns == "" {
		ns = namespace
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, "", fmt.Errorf("ref.apiVersion %q: %w", ref.APIVersion, err)
	}
	var base *apis.URL
	if gv.Group == "" && gv.Version == "v1" && ref.Kind == "Service" {
		services := schema.GroupVersionResource{Version: "v1", Resource: "services"}
		c.tracker.track(owner, services, ns, ref.Name)
		if _, err := c.dyn.Resource(services).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{}); err != nil {
			return nil, "", fmt.Errorf("Service %s/%s: %w", ns, ref.Name, err)
		}
		base = &apis.URL{Scheme: "http", Host: ref.Name + "." + ns + ".svc." + c.opts.ClusterDomain, Path: "/"}
	} else {
		gvr, err := c.resourceFor(gv.WithKind(ref.Kind))
		if err != nil {
			return nil, "", err
		}
		c.tracker.track(owner, gvr, ns, ref.Name)
		obj, err := c.dyn.Resource(gvr).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) {
				return nil, "", fmt.Errorf("%s %s/%s not found", ref.Kind, ns, ref.Name)
			}
			return nil, "", fmt.Errorf("getting %s %s/%s: %w", ref.Kind, ns, ref.Name, err)
		}
		s, certs := addressOf(obj)
		if s == "" {
			return nil, "", fmt.Errorf("%s %s/%s has no status.address.url yet (is it Ready?)", ref.Kind, ns, ref.Name)
		}
		base, err = apis.ParseURL(s)
		if err != nil || base.Host == "" {
			return nil, "", fmt.Errorf("%s %s/%s: status.address.url %q is not an absolute URL", ref.Kind, ns, ref.Name, s)
		}
		if caCerts == "" {
			caCerts = certs
		}
	}
	if d.URI != nil {
		ru := base.URL().ResolveReference(d.URI.URL())
		out := apis.URL(*ru)
		return &out, caCerts, nil
	}
	return base, caCerts, nil
}

// addressOf reads an Addressable's URL and CA certificates (duck type: status.address, or status.addresses[0]).
func addressOf(obj *unstructured.Unstructured) (u, caCerts string) {
	u, _, _ = unstructured.NestedString(obj.Object, "status", "address", "url")
	caCerts, _, _ = unstructured.NestedString(obj.Object, "status", "address", "CACerts")
	if u != "" {
		return u, caCerts
	}
	addrs, _, _ := unstructured.NestedSlice(obj.Object, "status", "addresses")
	for _, a := range addrs {
		if m, ok := a.(map[string]any); ok {
			if s, _ := m["url"].(string); s != "" {
				c, _ := m["CACerts"].(string)
				return s, c
			}
		}
	}
	return "", ""
}

// resourceFor maps a kind to its resource with discovery, refreshing once for kinds installed after start.
func (c *Controller) resourceFor(gvk schema.GroupVersionKind) (schema.GroupVersionResource, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return schema.GroupVersionResource{}, fmt.Errorf("the API server does not serve %s (%s): %w", gvk.Kind, gvk.GroupVersion(), err)
	}
	return m.Resource, nil
}

// tracker re-enqueues sources when the objects their sinks refer to change, watching each referenced resource type
// with one informer (started the first time a source refers to it), as Knative's tracker does.
type tracker struct {
	factory dynamicinformer.DynamicSharedInformerFactory
	enqueue func(key)
	log     *slog.Logger

	mu       sync.Mutex
	stop     <-chan struct{}
	watching map[schema.GroupVersionResource]bool
	refs     map[objectRef]map[key]struct{}
}

type objectRef struct {
	GVR             schema.GroupVersionResource
	Namespace, Name string
}

func newTracker(f dynamicinformer.DynamicSharedInformerFactory, enqueue func(key), log *slog.Logger) *tracker {
	return &tracker{factory: f, enqueue: enqueue, log: log, watching: map[schema.GroupVersionResource]bool{}, refs: map[objectRef]map[key]struct{}{}}
}

// start sets the channel that stops informers started later.
func (t *tracker) start(stop <-chan struct{}) {
	t.mu.Lock()
	t.stop = stop
	t.mu.Unlock()
}

func (t *tracker) track(owner key, gvr schema.GroupVersionResource, namespace, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := objectRef{gvr, namespace, name}
	if t.refs[r] == nil {
		t.refs[r] = map[key]struct{}{}
	}
	t.refs[r][owner] = struct{}{}
	if t.watching[gvr] || t.stop == nil {
		return
	}
	t.watching[gvr] = true
	inf := t.factory.ForResource(gvr).Informer()
	h := func(o any) {
		if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = d.Obj
		}
		m, err := meta.Accessor(o)
		if err != nil {
			return
		}
		t.notify(objectRef{gvr, m.GetNamespace(), m.GetName()})
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: h, UpdateFunc: func(_, o any) { h(o) }, DeleteFunc: h,
	}); err != nil {
		t.log.Warn("watching sinks", "resource", gvr.String(), "err", err)
		return
	}
	t.factory.Start(t.stop) // starts only the informers not yet running
	t.log.Info("watching sinks", "resource", gvr.String())
}

func (t *tracker) notify(r objectRef) {
	t.mu.Lock()
	var owners []key
	for k := range t.refs[r] {
		owners = append(owners, k)
	}
	t.mu.Unlock()
	for _, k := range owners {
		t.enqueue(k)
	}
}

// forget drops a deleted source from every watch list.
func (t *tracker) forget(owner key) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for r, owners := range t.refs {
		delete(owners, owner)
		if len(owners) == 0 {
			delete(t.refs, r)
		}
	}
}
