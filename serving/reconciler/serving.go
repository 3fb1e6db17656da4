package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/clock"
	"knative.dev/pkg/apis"
	"knative.dev/pkg/kmeta"
	"knative.dev/serving/pkg/apis/serving"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/tide-run/tide/controlplane/reconciler"
	"github.com/tide-run/tide/controlplane/store"
)

// GroupKinds of the serving kinds in the store.
const (
	ServiceGK       = "Service.serving.knative.dev"
	ConfigurationGK = "Configuration.serving.knative.dev"
	RevisionGK      = "Revision.serving.knative.dev"
	RouteGK         = "Route.serving.knative.dev"
)

// Options configures the serving reconcilers.
type Options struct {
	Store *store.Store       // required
	Clock clock.PassiveClock // stamps lastTransitionTime; default real clock
	// URL is a Route's external URL. Default: http://{name}.{namespace}.{Domain}:{GatewayPort}.
	URL func(name, namespace string) *apis.URL
	// Domain and GatewayPort build the default URL. Defaults "localhost" (which resolves to the loopback address)
	// and 8080.
	Domain      string
	GatewayPort int
	// IngressReady reports whether the gateway serves a Route. Default: not implemented (Ready=False, reason
	// NotImplemented), until tide's gateway is wired in.
	IngressReady func(route *servingv1.Route) (ready bool, reason, message string)
	// Ingress, when set, replaces IngressReady and receives the resolved traffic (see RouteReconciler.Ingress).
	Ingress func(route *servingv1.Route, traffic []servingv1.TrafficTarget, resolved bool) (ready bool, reason, message string)
	// RevisionMessage is the NotImplemented message of the default Revision reconciler.
	RevisionMessage string
}

func (o *Options) fill() {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Domain == "" {
		o.Domain = "localhost"
	}
	if o.GatewayPort == 0 {
		o.GatewayPort = 8080
	}
	if o.URL == nil {
		domain, port := o.Domain, o.GatewayPort
		o.URL = func(name, namespace string) *apis.URL {
			host := name + "." + namespace + "." + domain
			if port != 80 {
				host += ":" + strconv.Itoa(port)
			}
			return &apis.URL{Scheme: "http", Host: host}
		}
	}
	if o.IngressReady == nil {
		o.IngressReady = func(*servingv1.Route) (bool, string, string) {
			return false, reconciler.ReasonNotImplemented, "the serving gateway is not part of this build yet"
		}
	}
	if o.RevisionMessage == "" {
		o.RevisionMessage = "the serving runtime (process runner, autoscaler) is not part of this build yet"
	}
}

// Register adds the Service, Configuration, Route and (NotImplemented) Revision reconcilers to m. Replace the
// Revision reconciler afterwards with m.Register when the serving runtime is wired in.
func Register(m *reconciler.Manager, opts Options) {
	opts.fill()
	sw := reconciler.StatusWriter{Store: opts.Store, Clock: opts.Clock}
	ev := reconciler.Recorder{Store: opts.Store, Clock: opts.Clock}
	m.Register(reconciler.Registration{GroupKind: ServiceGK, Reconciler: &ServiceReconciler{Store: opts.Store, Status: sw, Events: ev},
		Owns: []string{ConfigurationGK, RouteGK}})
	m.Register(reconciler.Registration{GroupKind: ConfigurationGK, Reconciler: &ConfigurationReconciler{Store: opts.Store, Status: sw, Events: ev},
		Owns: []string{RevisionGK}})
	m.Register(reconciler.Registration{GroupKind: RouteGK,
		Reconciler: &RouteReconciler{Store: opts.Store, Status: sw, URL: opts.URL, IngressReady: opts.IngressReady, Ingress: opts.Ingress},
		Watches: []reconciler.Watch{
			{GroupKind: ConfigurationGK, Map: routesInNamespace(opts.Store)},
			{GroupKind: RevisionGK, Map: routesInNamespace(opts.Store)},
		}})
	m.Register(reconciler.Registration{GroupKind: RevisionGK, Reconciler: reconciler.NotImplemented{
		Store: opts.Store, Status: sw, GroupKind: RevisionGK, Message: opts.RevisionMessage}})
}

// routesInNamespace enqueues every Route in the event's namespace: Routes are few, and resolving which of them name
// a Configuration or Revision would duplicate the Route reconciler's own work.
func routesInNamespace(st *store.Store) func(store.Event) []reconciler.Key {
	return func(e store.Event) []reconciler.Key {
		routes, _, err := st.List(RouteGK, e.Object.GetNamespace())
		if err != nil {
			return nil
		}
		keys := make([]reconciler.Key, 0, len(routes))
		for _, r := range routes {
			keys = append(keys, reconciler.Key{Namespace: r.GetNamespace(), Name: r.GetName()})
		}
		return keys
	}
}

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: servingv1.SchemeGroupVersion.String(), Kind: kind}
}

// controlledBy reports whether obj's controller ownerReference points at uid.
func controlledBy(obj metav1.Object, uid string) bool {
	for _, ref := range obj.GetOwnerReferences() {
		if string(ref.UID) == uid && ref.Controller != nil && *ref.Controller {
			return true
		}
	}
	return false
}

// ensureChild creates desired when missing, or updates the stored child's spec, labels and annotations when they
// differ. It returns the stored child, or errNotOwned when an object of that name exists but is not controlled by
// ownerUID.
func ensureChild(st *store.Store, ev reconciler.Recorder, owner *unstructured.Unstructured, gk string, desired *unstructured.Unstructured, ownerUID string) (*unstructured.Unstructured, error) {
	for attempt := 0; ; attempt++ {
		cur, err := st.Get(gk, desired.GetNamespace(), desired.GetName())
		if errors.Is(err, store.ErrNotFound) {
			created, err := st.Create(desired)
			if err == nil {
				_ = ev.Event(owner, "Normal", "Created", fmt.Sprintf("Created %s %q", desired.GetKind(), desired.GetName()))
			}
			return created, err
		}
		if err != nil {
			return nil, err
		}
		if !controlledBy(cur, ownerUID) {
			return cur, errNotOwned
		}
		next := desired.DeepCopy()
		next.SetOwnerReferences(cur.GetOwnerReferences())
		// Others' finalizers are theirs (Knative's reconcilers leave them alone too).
		next.SetFinalizers(cur.GetFinalizers())
		// The owner references and finalizers just copied are cur's: a write that lands after someone changed them
		// (an orphaning delete stripping the owner reference, a finalizer removed) must not put the old ones back,
		// so the update is conditional on cur's resourceVersion. A conflict (often only the child's own status
		// write) reads again.
		next.SetResourceVersion(cur.GetResourceVersion())
		out, err := st.Update(next) // a no-op when nothing differs
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue
		}
		return out, err
	}
}

var errNotOwned = errors.New("not owned")

// ensureTypedChild is ensureChild for a typed desired child, returning the stored child decoded. owned is false,
// with no error, when an object of that name is controlled by someone else (it is left alone).
func ensureTypedChild[T any](st *store.Store, ev reconciler.Recorder, owner *unstructured.Unstructured, gk string, desired *T, ownerUID string) (stored *T, owned bool, err error) {
	du, err := toUnstructured(desired)
	if err != nil {
		return nil, false, err
	}
	su, err := ensureChild(st, ev, owner, gk, du, ownerUID)
	if errors.Is(err, errNotOwned) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	stored = new(T)
	if err := reconciler.FromUnstructured(su, stored); err != nil {
		return nil, false, err
	}
	return stored, true, nil
}

func mergeLabels(base map[string]string, extra map[string]string) map[string]string {
	out := map[string]string{}
	maps.Copy(out, base)
	maps.Copy(out, extra)
	return out
}

// ServiceReconciler reconciles serving.knative.dev/v1 Services.
type ServiceReconciler struct {
	Store  *store.Store
	Status reconciler.StatusWriter
	Events reconciler.Recorder
}

// Reconcile implements reconciler.Reconciler.
func (r *ServiceReconciler) Reconcile(_ context.Context, key reconciler.Key) error {
	u, err := r.Store.Get(ServiceGK, key.Namespace, key.Name)
	if err != nil {
		return reconciler.IgnoreNotFound(err)
	}
	if u.GetDeletionTimestamp() != nil {
		return nil // being deleted (e.g. foreground, waiting for its dependents): never re-create them
	}
	var svc servingv1.Service
	if err := reconciler.FromUnstructured(u, &svc); err != nil {
		return err
	}
	status := svc.Status.DeepCopy()
	status.InitializeConditions()
	status.ObservedGeneration = svc.Generation
	owner := *kmeta.NewControllerRef(&svc)
	labels := mergeLabels(svc.Labels, map[string]string{serving.ServiceLabelKey: svc.Name})

	cfg := servingv1.Configuration{TypeMeta: typeMeta("Configuration"), ObjectMeta: metav1.ObjectMeta{
		Name: svc.Name, Namespace: svc.Namespace, Labels: labels, Annotations: svc.Annotations,
		OwnerReferences: []metav1.OwnerReference{owner}}, Spec: svc.Spec.ConfigurationSpec}
	c, owned, err := ensureTypedChild(r.Store, r.Events, u, ConfigurationGK, &cfg, string(svc.UID))
	switch {
	case err != nil:
		return err
	case !owned:
		status.MarkConfigurationNotOwned(svc.Name)
	case c.Generation != c.Status.ObservedGeneration:
		status.MarkConfigurationNotReconciled()
	default:
		status.PropagateConfigurationStatus(&c.Status)
	}

	route := servingv1.Route{TypeMeta: typeMeta("Route"), ObjectMeta: metav1.ObjectMeta{
		Name: svc.Name, Namespace: svc.Namespace, Labels: labels, Annotations: svc.Annotations,
		OwnerReferences: []metav1.OwnerReference{owner}}, Spec: routeSpecFor(&svc)}
	rt, owned, err := ensureTypedChild(r.Store, r.Events, u, RouteGK, &route, string(svc.UID))
	switch {
	case err != nil:
		return err
	case !owned:
		status.MarkRouteNotOwned(svc.Name)
	case rt.Generation != rt.Status.ObservedGeneration:
		status.MarkRouteNotReconciled()
	default:
		status.PropagateRouteStatus(&rt.Status)
	}
	_, err = r.Status.Write(u, status)
	return err
}

// routeSpecFor is the Route a Service asks for: its traffic block, with targets that follow the latest revision
// pointed at the Service's Configuration (as Knative's service controller does).
func routeSpecFor(svc *servingv1.Service) servingv1.RouteSpec {
	spec := servingv1.RouteSpec{}
	for _, t := range svc.Spec.Traffic {
		t := *t.DeepCopy()
		if t.RevisionName == "" {
			t.ConfigurationName = svc.Name
		}
		spec.Traffic = append(spec.Traffic, t)
	}
	if len(spec.Traffic) == 0 {
		latest := true
		var pct int64 = 100
		spec.Traffic = []servingv1.TrafficTarget{{ConfigurationName: svc.Name, LatestRevision: &latest, Percent: &pct}}
	}
	return spec
}

func toUnstructured(obj any) (*unstructured.Unstructured, error) {
	u, err := reconciler.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u, nil
}

// ConfigurationReconciler reconciles Configurations: one immutable Revision per template generation.
type ConfigurationReconciler struct {
	Store  *store.Store
	Status reconciler.StatusWriter
	Events reconciler.Recorder
}

// RevisionName is the Revision a Configuration generation stamps: the template's own name when given, else
// <configuration>-<generation, five digits>.
func RevisionName(cfg *servingv1.Configuration) string {
	if cfg.Spec.Template.Name != "" {
		return cfg.Spec.Template.Name
	}
	return kmeta.ChildName(cfg.Name, fmt.Sprintf("-%05d", cfg.Generation))
}

// Reconcile implements reconciler.Reconciler.
func (r *ConfigurationReconciler) Reconcile(_ context.Context, key reconciler.Key) error {
	u, err := r.Store.Get(ConfigurationGK, key.Namespace, key.Name)
	if err != nil {
		return reconciler.IgnoreNotFound(err)
	}
	if u.GetDeletionTimestamp() != nil {
		return nil // being deleted (e.g. foreground, waiting for its dependents): never re-create them
	}
	var cfg servingv1.Configuration
	if err := reconciler.FromUnstructured(u, &cfg); err != nil {
		return err
	}
	status := cfg.Status.DeepCopy()
	status.InitializeConditions()
	status.ObservedGeneration = cfg.Generation
	name := RevisionName(&cfg)

	revU, err := r.Store.Get(RevisionGK, cfg.Namespace, name)
	if errors.Is(err, store.ErrNotFound) {
		revU, err = r.Store.Create(mustRevision(&cfg, name))
		if err == nil {
			_ = r.Events.Event(u, "Normal", "Created", fmt.Sprintf("Created Revision %q", name))
		}
	}
	if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		return err
	}
	if err != nil || !controlledBy(revU, string(cfg.UID)) {
		status.MarkRevisionCreationFailed(fmt.Sprintf("the revision name %q is taken by a Revision this Configuration does not own", name))
		_, err = r.Status.Write(u, status)
		return err
	}
	var rev servingv1.Revision
	if err := reconciler.FromUnstructured(revU, &rev); err != nil {
		return err
	}
	status.SetLatestCreatedRevisionName(name)
	switch rc := rev.Status.GetCondition(servingv1.RevisionConditionReady); {
	case rc == nil || rev.Status.ObservedGeneration != rev.Generation:
		// Not reconciled yet: Ready stays Unknown (SetLatestCreatedRevisionName).
	case rc.IsTrue():
		status.SetLatestReadyRevisionName(name)
	case rc.IsFalse() && rc.Reason == reconciler.ReasonNotImplemented:
		cfg.GetConditionSet().Manage(status).MarkFalse(servingv1.ConfigurationConditionReady, rc.Reason,
			"Revision %q: %s", name, rc.Message)
	case rc.IsFalse():
		status.MarkLatestCreatedFailed(name, rc.Message)
	}
	if status.LatestReadyRevisionName != "" && status.LatestReadyRevisionName != name {
		if _, err := r.Store.Get(RevisionGK, cfg.Namespace, status.LatestReadyRevisionName); errors.Is(err, store.ErrNotFound) {
			status.MarkLatestReadyDeleted()
		}
	}
	_, err = r.Status.Write(u, status)
	return err
}

func mustRevision(cfg *servingv1.Configuration, name string) *unstructured.Unstructured {
	t := cfg.Spec.Template
	labels := mergeLabels(t.Labels, map[string]string{
		serving.ConfigurationLabelKey:           cfg.Name,
		serving.ConfigurationGenerationLabelKey: strconv.FormatInt(cfg.Generation, 10),
		serving.ConfigurationUIDLabelKey:        string(cfg.UID),
	})
	if s := cfg.Labels[serving.ServiceLabelKey]; s != "" {
		labels[serving.ServiceLabelKey] = s
		labels[serving.ServiceUIDLabelKey] = serviceUID(cfg)
	}
	rev := servingv1.Revision{TypeMeta: typeMeta("Revision"), ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: cfg.Namespace, Labels: labels, Annotations: t.Annotations,
		OwnerReferences: []metav1.OwnerReference{*kmeta.NewControllerRef(cfg)}}, Spec: t.Spec}
	u, err := toUnstructured(&rev)
	if err != nil {
		panic(err) // a Revision built from a decoded Configuration always encodes
	}
	return u
}

func serviceUID(cfg *servingv1.Configuration) string {
	for _, ref := range cfg.OwnerReferences {
		if ref.Kind == "Service" {
			return string(ref.UID)
		}
	}
	return ""
}
