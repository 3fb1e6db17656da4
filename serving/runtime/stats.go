package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/tide-run/tide/controlplane/reconciler"
	"github.com/tide-run/tide/controlplane/store"
	"github.com/tide-run/tide/serving/autoscaler/metrics"
	"github.com/tide-run/tide/serving/gateway"
	"github.com/tide-run/tide/serving/process"
	servingrec "github.com/tide-run/tide/serving/reconciler"
)

// statSink integrates the gateway's per-request events into one metrics.Reporter per revision. Requests are
// counted from arrival (queued time included, as queue-proxy and the activator count them), so a request held at
// zero already shows as demand. reporters maps types.NamespacedName to *metrics.Reporter; a sync.Map keeps the
// request path free of Runtime.mu.
type statSink struct {
	rt        *Runtime
	reporters sync.Map
}

func (s *statSink) reporter(rev types.NamespacedName) *metrics.Reporter {
	if v, ok := s.reporters.Load(rev); ok {
		return v.(*metrics.Reporter)
	}
	v, _ := s.reporters.LoadOrStore(rev, metrics.NewReporter(s.rt.clock))
	return v.(*metrics.Reporter)
}

// RequestStart implements gateway.StatSink.
func (s *statSink) RequestStart(rev types.NamespacedName, _ time.Time) { s.reporter(rev).In(false) }

// RequestEnd implements gateway.StatSink.
func (s *statSink) RequestEnd(rev types.NamespacedName, _ time.Time) { s.reporter(rev).Out(false) }

// loop records every revision's stat once per ReportInterval (idle revisions report zeros, so the stable window
// empties and the revision can go to zero) and keeps statuses in sync.
func (rt *Runtime) loop() {
	defer close(rt.loopDone)
	sink := rt.stats
	t := rt.clock.NewTicker(rt.opts.ReportInterval)
	defer t.Stop()
	for {
		select {
		case <-rt.stop:
			return
		case <-t.C():
		}
		now := rt.clock.Now()
		rt.mu.Lock()
		keys := make([]types.NamespacedName, 0, len(rt.revs))
		for k := range rt.revs {
			keys = append(keys, k)
		}
		rt.mu.Unlock()
		for _, k := range keys {
			st := sink.reporter(k).Report()
			rt.ms.Record(revKey(k), now, st)
		}
		rt.syncStatuses(now)
	}
}

// storeResolver backs env valueFrom with the store's Secrets and ConfigMaps.
type storeResolver struct{ st *store.Store }

func (r storeResolver) SecretData(_ context.Context, ns, name string) (map[string][]byte, error) {
	s, err := reconciler.GetTyped[corev1.Secret](r.st, "Secret", ns, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("secret %s/%s: %w", ns, name, process.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for k, v := range s.Data {
		out[k] = v
	}
	for k, v := range s.StringData {
		out[k] = []byte(v)
	}
	return out, nil
}

func (r storeResolver) ConfigMapData(_ context.Context, ns, name string) (map[string]string, error) {
	cm, err := reconciler.GetTyped[corev1.ConfigMap](r.st, "ConfigMap", ns, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("configmap %s/%s: %w", ns, name, process.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range cm.Data {
		out[k] = v
	}
	for k, v := range cm.BinaryData {
		out[k] = string(v)
	}
	return out, nil
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// ingress is the Route reconciler's hook: it programs the gateway with the resolved traffic and reports
// IngressReady only once the gateway serves it. While a target cannot be resolved the previous programming stays.
func (rt *Runtime) ingress(route *servingv1.Route, traffic []servingv1.TrafficTarget, resolved bool) (bool, string, string) {
	k := types.NamespacedName{Namespace: route.Namespace, Name: route.Name}
	// Visibility first, so a cluster-local route is never served publicly, even for a moment.
	rt.gw.SetClusterLocal(k.Namespace, k.Name, servingrec.ClusterLocal(route.Labels))
	if !resolved {
		rt.mu.Lock()
		_, have := rt.programmed[k]
		rt.mu.Unlock()
		if have {
			return true, "", ""
		}
		return false, "", "Waiting for a ready revision to route to."
	}
	targets := make([]gateway.Target, 0, len(traffic))
	for _, t := range traffic {
		pct := 0
		if t.Percent != nil {
			pct = int(*t.Percent)
		}
		targets = append(targets, gateway.Target{Revision: t.RevisionName, Percent: pct, Tag: t.Tag})
	}
	if err := rt.gw.SetRoute(k.Namespace, k.Name, targets); err != nil {
		return false, "IngressNotConfigured", err.Error()
	}
	rt.mu.Lock()
	rt.programmed[k] = targets
	rt.mu.Unlock()
	return true, "", ""
}

func (rt *Runtime) deleteRoute(key reconciler.Key) {
	k := types.NamespacedName{Namespace: key.Namespace, Name: key.Name}
	rt.gw.DeleteRoute(k.Namespace, k.Name)
	rt.mu.Lock()
	delete(rt.programmed, k)
	rt.mu.Unlock()
}
