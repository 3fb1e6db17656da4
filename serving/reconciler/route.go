package reconciler

import (
	"context"
	"errors"

	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/tide-run/tide/controlplane/reconciler"
	"github.com/tide-run/tide/controlplane/store"
)

// RouteReconciler reconciles Routes: it resolves traffic targets to Revisions and publishes URLs. Whether the
// gateway serves the Route is IngressReady's call.
type RouteReconciler struct {
	Store        *store.Store
	Status       reconciler.StatusWriter
	URL          func(name, namespace string) *apis.URL
	IngressReady func(route *servingv1.Route) (ready bool, reason, message string)
	// Ingress, when set, replaces IngressReady: it is given the resolved traffic (resolved=false when a target
	// cannot be resolved yet) so the data plane can program it before the Route reports IngressReady.
	Ingress func(route *servingv1.Route, traffic []servingv1.TrafficTarget, resolved bool) (ready bool, reason, message string)
}

// Reconcile implements reconciler.Reconciler.
func (r *RouteReconciler) Reconcile(_ context.Context, key reconciler.Key) error {
	u, err := r.Store.Get(RouteGK, key.Namespace, key.Name)
	if err != nil {
		return reconciler.IgnoreNotFound(err)
	}
	if u.GetDeletionTimestamp() != nil {
		return nil // being deleted: Knative's reconcilers leave such objects to their finalizers
	}
	var route servingv1.Route
	if err := reconciler.FromUnstructured(u, &route); err != nil {
		return err
	}
	status := route.Status.DeepCopy()
	status.InitializeConditions()
	status.ObservedGeneration = route.Generation
	url := r.URL(route.Name, route.Namespace)
	status.URL = publicURL(&route, route.Name, url)
	status.Address = &duckv1.Addressable{URL: url}
	status.MarkTLSNotEnabled("tide serves plain HTTP on the gateway port")

	traffic, resolved, err := r.resolve(&route, status)
	if err != nil {
		return err
	}
	if resolved {
		status.MarkTrafficAssigned()
		status.Traffic = traffic
	}
	var ready bool
	var reason, message string
	if r.Ingress != nil {
		ready, reason, message = r.Ingress(&route, traffic, resolved)
	} else {
		ready, reason, message = r.IngressReady(&route)
	}
	m := route.GetConditionSet().Manage(status)
	switch {
	case ready:
		m.MarkTrue(servingv1.RouteConditionIngressReady)
	case reason == "":
		// Nothing to program yet (no resolved traffic): Unknown, and Ready keeps the traffic condition's reason. Ready
		// follows the condition marked last, so the traffic condition is marked again after IngressReady.
		m.MarkUnknown(servingv1.RouteConditionIngressReady, "Uninitialized", "%s", message)
		if c := status.GetCondition(servingv1.RouteConditionAllTrafficAssigned); c != nil && c.IsUnknown() {
			m.MarkUnknown(servingv1.RouteConditionAllTrafficAssigned, c.Reason, "%s", c.Message)
		}
	default:
		m.MarkFalse(servingv1.RouteConditionIngressReady, reason, "%s", message)
	}
	_, err = r.Status.Write(u, status)
	return err
}

// resolve turns spec.traffic into status.traffic: configuration targets become their latest ready Revision. It
// marks AllTrafficAssigned on status when a target cannot be resolved and reports resolved=false.
func (r *RouteReconciler) resolve(route *servingv1.Route, status *servingv1.RouteStatus) ([]servingv1.TrafficTarget, bool, error) {
	var out []servingv1.TrafficTarget
	for _, t := range route.Spec.Traffic {
		t := *t.DeepCopy()
		if t.RevisionName == "" {
			cfg, err := reconciler.GetTyped[servingv1.Configuration](r.Store, ConfigurationGK, route.Namespace, t.ConfigurationName)
			if errors.Is(err, store.ErrNotFound) {
				status.MarkMissingTrafficTarget("Configuration", t.ConfigurationName)
				return nil, false, nil
			}
			if err != nil {
				return nil, false, err
			}
			if cfg.Status.LatestReadyRevisionName == "" {
				if cfg.IsFailed() {
					status.MarkConfigurationFailed(cfg.Name)
				} else {
					status.MarkConfigurationNotReady(cfg.Name)
				}
				return nil, false, nil
			}
			t.RevisionName = cfg.Status.LatestReadyRevisionName
			t.ConfigurationName = ""
			latest := true
			t.LatestRevision = &latest
		} else {
			rev, err := reconciler.GetTyped[servingv1.Revision](r.Store, RevisionGK, route.Namespace, t.RevisionName)
			if errors.Is(err, store.ErrNotFound) {
				status.MarkMissingTrafficTarget("Revision", t.RevisionName)
				return nil, false, nil
			}
			if err != nil {
				return nil, false, err
			}
			if !rev.IsReady() {
				if rev.IsFailed() {
					status.MarkRevisionFailed(rev.Name)
				} else {
					status.MarkRevisionNotReady(rev.Name)
				}
				return nil, false, nil
			}
			latest := false
			t.LatestRevision = &latest
		}
		if t.Tag != "" {
			t.URL = publicURL(route, t.Tag+"-"+route.Name, r.URL(t.Tag+"-"+route.Name, route.Namespace))
		}
		out = append(out, t)
	}
	return out, true, nil
}
