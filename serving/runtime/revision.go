package runtime

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/serving/pkg/apis/serving"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/tide-run/tide/controlplane/reconciler"
	"github.com/tide-run/tide/controlplane/store"
	"github.com/tide-run/tide/serving/autoscaler"
	"github.com/tide-run/tide/serving/autoscaler/config"
	"github.com/tide-run/tide/serving/autoscaler/metrics"
	"github.com/tide-run/tide/serving/process"
	servingrec "github.com/tide-run/tide/serving/reconciler"
)

// revision is the runtime state of one Revision. Fields other than last* are set once at creation; last* are
// guarded by Runtime.mu.
type revision struct {
	key           types.NamespacedName
	service       string
	configuration string
	cc            int
	pool          *process.Pool
	detach        func()
	reporter      *metrics.Reporter

	lastSnap snapshot
	lastEnq  time.Time
	// settings were last given to the Multiscaler (guarded by Runtime.mu); an unchanged Add is skipped because
	// Add decides at once, and extra decisions would speed up scale-downs beyond max-scale-down-rate.
	settings *config.Settings
}

// snapshot is what the Revision's status shows; a change makes the status sync enqueue the Revision.
type snapshot struct {
	desired, actual, ready int
	failed                 bool
	reason                 string
	everReady              bool
	inPath                 bool
	phase                  autoscaler.Phase
	concurrency            float64 // rounded to 0.1
}

// TideStatus is status.tide of a Revision: what `tide get rev -o wide` shows beyond Knative's replica counts.
type TideStatus struct {
	// Processes is how many instance processes run or are starting (actualReplicas counts the ready ones, as
	// Knative's does).
	Processes int `json:"processes"`
	// ContainerConcurrency is the per-instance hard limit (0 = unlimited).
	ContainerConcurrency int `json:"containerConcurrency"`
	// Concurrency is the observed average concurrency over the stable window; Target the per-instance target.
	Concurrency float64 `json:"concurrency"`
	Target      float64 `json:"target"`
	// ActivatorInPath reports whether requests go through the activator's queue (at zero or short of burst
	// capacity).
	ActivatorInPath bool `json:"activatorInPath"`
	// Panicking reports the autoscaler's panic mode.
	Panicking bool `json:"panicking"`
	// Restarts counts unexpected process exits.
	Restarts int `json:"restarts"`
	// SourceDir is where a ko:// image was resolved.
	SourceDir string `json:"sourceDir,omitempty"`
	// Limits says whether resource limits are enforced.
	Limits string `json:"limits,omitempty"`
}

func revKey(k types.NamespacedName) string { return k.String() }

func parseRevKey(s string) types.NamespacedName {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return types.NamespacedName{Namespace: s[:i], Name: s[i+1:]}
		}
	}
	return types.NamespacedName{Name: s}
}

func (rt *Runtime) lookup(k types.NamespacedName) *revision {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.revs[k]
}

// setDesired is the autoscaler's Scaler: size the pool and place the activator.
func (rt *Runtime) setDesired(key string, desired int32, inPath bool) {
	k := parseRevKey(key)
	r := rt.lookup(k)
	if r == nil {
		return
	}
	r.pool.SetScale(int(desired))
	rt.gw.SetActivatorInPath(k, inPath)
	rt.enqueueRevision(k)
}

// readyInstances is the autoscaler's ReadyCounter.
func (rt *Runtime) readyInstances(key string) int {
	r := rt.lookup(parseRevKey(key))
	if r == nil {
		return 0
	}
	return r.pool.ReadyCount()
}

func (rt *Runtime) enqueueRevision(k types.NamespacedName) {
	if m := rt.recons.Load(); m != nil {
		m.Enqueue(servingrec.RevisionGK, reconciler.Key{Namespace: k.Namespace, Name: k.Name})
	}
}

// poker forwards the activator's "requests are waiting" to the autoscaler.
type poker struct{ rt *Runtime }

func (p poker) Poke(rev types.NamespacedName) { p.rt.ms.Poke(revKey(rev)) }

// autoscalerConfig returns the cluster-wide settings from the config-autoscaler ConfigMap, re-parsed when it
// changes. A bad ConfigMap keeps the last good settings and is reported on every revision's status.
func (rt *Runtime) autoscalerConfig() (config.Config, error) {
	u, err := rt.st.Get("ConfigMap", AutoscalerConfigNamespace, AutoscalerConfigMap)
	rv := ""
	if err == nil {
		rv = u.GetResourceVersion()
	} else if !errors.Is(err, store.ErrNotFound) {
		return config.Config{}, err
	}
	rt.cfgMu.Lock()
	defer rt.cfgMu.Unlock()
	if rv == rt.cfgRV && (rv != "" || rt.cfgErr == nil) {
		return rt.cfg, rt.cfgErr
	}
	rt.cfgRV = rv
	if u == nil {
		rt.cfg, rt.cfgErr = config.Defaults(), nil
		return rt.cfg, nil
	}
	var cm corev1.ConfigMap
	if err := reconciler.FromUnstructured(u, &cm); err != nil {
		rt.cfgErr = err
		return rt.cfg, err
	}
	c, err := config.FromMap(cm.Data)
	if err != nil {
		rt.cfgErr = fmt.Errorf("ConfigMap %s/%s: %w", AutoscalerConfigNamespace, AutoscalerConfigMap, err)
		rt.log.Warn("invalid autoscaler configuration; keeping the previous one", "err", err)
		return rt.cfg, rt.cfgErr
	}
	rt.cfg, rt.cfgErr = c, nil
	rt.log.Info("autoscaler configuration loaded", "stableWindow", c.StableWindow, "scaleToZeroGracePeriod", c.ScaleToZeroGracePeriod)
	return c, nil
}

// sourceDir is where the revision's ko:// image is resolved: the tide.dev/source-dir annotation of the Revision,
// its Configuration or its Service, else Options.SourceDir, else the working directory.
func (rt *Runtime) sourceDir(rev *servingv1.Revision) string {
	if d := rev.Annotations[SourceDirAnnotation]; d != "" {
		return d
	}
	for _, p := range []struct{ gk, name string }{
		{servingrec.ConfigurationGK, rev.Labels[serving.ConfigurationLabelKey]},
		{servingrec.ServiceGK, rev.Labels[serving.ServiceLabelKey]},
	} {
		if p.name == "" {
			continue
		}
		if u, err := rt.st.Get(p.gk, rev.Namespace, p.name); err == nil {
			if d := u.GetAnnotations()[SourceDirAnnotation]; d != "" {
				return d
			}
		}
	}
	if rt.opts.SourceDir != "" {
		return rt.opts.SourceDir
	}
	wd, _ := os.Getwd()
	return wd
}

// reachable reports whether a route sends (or is about to send) traffic to rev: it is named in a Route's traffic,
// or it is its Configuration's latest created revision. Unreachable revisions ignore min-scale and go to zero.
func (rt *Runtime) reachable(rev *servingv1.Revision) bool {
	routes, _, err := rt.st.List(servingrec.RouteGK, rev.Namespace)
	if err != nil {
		return true
	}
	for _, u := range routes {
		var route servingv1.Route
		if reconciler.FromUnstructured(u, &route) != nil {
			continue
		}
		for _, t := range append(append([]servingv1.TrafficTarget(nil), route.Spec.Traffic...), route.Status.Traffic...) {
			if t.RevisionName == rev.Name {
				return true
			}
		}
	}
	cfgName := rev.Labels[serving.ConfigurationLabelKey]
	if cfgName == "" {
		return true
	}
	u, err := rt.st.Get(servingrec.ConfigurationGK, rev.Namespace, cfgName)
	if err != nil {
		return false
	}
	var cfg servingv1.Configuration
	if reconciler.FromUnstructured(u, &cfg) != nil {
		return true
	}
	return cfg.Status.LatestCreatedRevisionName == rev.Name || cfg.Status.LatestCreatedRevisionName == ""
}

// removeRevision stops everything of a deleted Revision.
func (rt *Runtime) removeRevision(k types.NamespacedName) {
	rt.mu.Lock()
	r := rt.revs[k]
	delete(rt.revs, k)
	rt.mu.Unlock()
	if r == nil {
		return
	}
	rt.ms.Remove(revKey(k))
	rt.stats.reporters.Delete(k)
	r.detach()
	rt.gw.DeleteRevision(k)
	go func() {
		spec := r.pool.Spec()
		ctx, cancel := context.WithTimeout(context.Background(), spec.Timeout()+10*time.Second)
		defer cancel()
		if err := r.pool.Close(ctx); err != nil {
			rt.log.Warn("stopping revision", "revision", k.String(), "err", err)
		}
	}()
}

// ensure returns the runtime state of rev, creating its pool (at scale zero) and attaching it to the gateway.
func (rt *Runtime) ensure(rev *servingv1.Revision) (*revision, error) {
	k := types.NamespacedName{Namespace: rev.Namespace, Name: rev.Name}
	dir := rt.sourceDir(rev)
	if r := rt.lookup(k); r != nil {
		st := r.pool.Status()
		if r.pool.Spec().Dir == dir || st.Reason != "BuildFailed" {
			return r, nil
		}
		// Applied again from another directory after its ko:// image failed to build: start over in the new
		// directory, as a new `ko apply` would, instead of retrying the old one forever. A failed build leaves no
		// process running, so closing is quick; it finishes before the new pool reuses the slot names.
		rt.log.Info("source directory changed; rebuilding failed revision", "revision", k.String(), "from", r.pool.Spec().Dir, "to", dir)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = r.pool.Close(ctx)
		cancel()
		rt.removeRevision(k)
	}
	opts := process.Options{
		Spec: process.Spec{
			Namespace:     rev.Namespace,
			Service:       rev.Labels[serving.ServiceLabelKey],
			Configuration: rev.Labels[serving.ConfigurationLabelKey],
			Revision:      rev.Name,
			Dir:           dir,
			RevisionSpec:  rev.Spec,
			UID:           string(rev.UID),
			Labels:        rev.Labels,
			Annotations:   rev.Annotations,
		},
		DataDir:     rt.opts.DataDir,
		InstanceDir: rt.instDir,
		RunAs:       rt.opts.RunAs,
		Builder:     rt.builder,
		Resolver:    storeResolver{rt.st},
		Logger:      rt.opts.Logger,
	}
	if v := rev.Annotations[ProgressDeadlineAnnotation]; v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			opts.ProgressDeadline = d
		}
	}
	pool, err := process.New(opts)
	if err != nil {
		return nil, err
	}
	cc := 0
	if rev.Spec.ContainerConcurrency != nil {
		cc = int(*rev.Spec.ContainerConcurrency)
	}
	r := &revision{key: k, service: opts.Spec.Service, configuration: opts.Spec.Configuration, cc: cc, pool: pool,
		reporter: metrics.NewReporter(rt.clock)}
	rt.mu.Lock()
	if have := rt.revs[k]; have != nil { // a concurrent reconcile won
		rt.mu.Unlock()
		return have, nil
	}
	rt.revs[k] = r
	rt.mu.Unlock()
	detachGW := rt.gw.AttachPool(k, pool)
	// Instance events change the status (ready count); the status sync also catches what events do not show.
	cancel := pool.Subscribe(func(process.Event) { rt.enqueueRevision(k) })
	r.detach = func() { cancel(); detachGW() }
	return r, nil
}

// reconcileRevision makes the Revision run and writes its status.
func (rt *Runtime) reconcileRevision(_ context.Context, key reconciler.Key) error {
	k := types.NamespacedName{Namespace: key.Namespace, Name: key.Name}
	u, err := rt.st.Get(servingrec.RevisionGK, key.Namespace, key.Name)
	if errors.Is(err, store.ErrNotFound) {
		rt.removeRevision(k)
		return nil
	}
	if err != nil {
		return err
	}
	var rev servingv1.Revision
	if err := reconciler.FromUnstructured(u, &rev); err != nil {
		return err
	}
	status := rev.Status.DeepCopy()
	status.InitializeConditions()
	status.ObservedGeneration = rev.Generation

	cfg, cfgErr := rt.autoscalerConfig()
	var cc int64
	if rev.Spec.ContainerConcurrency != nil {
		cc = *rev.Spec.ContainerConcurrency
	}
	settings, err := config.ForRevision(cfg, rev.Annotations, cc)
	if err != nil {
		status.MarkResourcesAvailableFalse("InvalidAutoscalingSettings", err.Error())
		_, werr := rt.sw.Write(u, status)
		return werr
	}
	settings.Reachable = rt.reachable(&rev)

	r, err := rt.ensure(&rev)
	if err != nil {
		reason := "InvalidSpec"
		if !errors.Is(err, process.ErrInvalidSpec) {
			reason = "CreateContainerError"
		}
		status.MarkContainerHealthyFalse(reason, err.Error())
		status.MarkResourcesAvailableFalse(reason, err.Error())
		_, werr := rt.sw.Write(u, status)
		return werr
	}
	rt.mu.Lock()
	same := r.settings != nil && *r.settings == settings
	rt.mu.Unlock()
	if same {
		err = nil
	} else if err = rt.ms.Add(revKey(k), settings); err == nil {
		rt.mu.Lock()
		r.settings = &settings
		rt.mu.Unlock()
	}
	if err != nil {
		if errors.Is(err, autoscaler.ErrClosed) {
			return nil // shutting down
		}
		status.MarkResourcesAvailableFalse("InvalidAutoscalingSettings", err.Error())
		_, werr := rt.sw.Write(u, status)
		return werr
	}

	snap, tide := rt.observe(r)
	rt.mu.Lock()
	r.lastSnap, r.lastEnq = snap, rt.clock.Now()
	rt.mu.Unlock()
	ps := r.pool.Status()
	actual, desired := int32(ps.Ready), int32(ps.Desired)
	status.ActualReplicas, status.DesiredReplicas = &actual, &desired
	switch {
	case ps.Failed:
		status.MarkContainerHealthyFalse(ps.Reason, ps.Message)
		if !ps.EverReady || ps.Ready == 0 {
			status.MarkResourcesAvailableFalse(ps.Reason, ps.Message)
		}
	case ps.EverReady || ps.Ready > 0:
		status.MarkContainerHealthyTrue()
		status.MarkResourcesAvailableTrue()
	case settings.InitialScale == 0 && ps.Desired == 0:
		// Nothing to start until the first request (initial-scale 0): there is nothing to wait for either.
		status.MarkContainerHealthyTrue()
		status.MarkResourcesAvailableTrue()
	case wasReady(&rev):
		// Ready once means Ready until a failure (e.g. after a restart of tide, before the first instance is up).
	default:
		status.MarkResourcesAvailableUnknown("Deploying", "")
		status.MarkContainerHealthyUnknown("Deploying", "")
	}
	switch snap.phase {
	case autoscaler.PhaseActive:
		status.MarkActiveTrue()
	case autoscaler.PhaseInactive:
		status.MarkActiveFalse("NoTraffic", "The target is not receiving traffic.")
	default:
		status.MarkActiveUnknown("Queued", "Requests to the target are being buffered as resources are provisioned.")
	}
	if cfgErr != nil {
		rt.log.Warn("autoscaler configuration", "revision", k.String(), "err", cfgErr)
	}
	tide.SourceDir = r.pool.Spec().Dir
	tide.Limits = ps.Limits
	tide.Restarts = ps.Restarts
	out, err := toMap(status)
	if err != nil {
		return err
	}
	tm, err := toMap(tide)
	if err != nil {
		return err
	}
	out["tide"] = tm
	_, err = rt.sw.Write(u, out)
	return err
}

// observe takes the revision's current snapshot and the tide status that goes with it.
func (rt *Runtime) observe(r *revision) (snapshot, TideStatus) {
	ps := r.pool.Status()
	gs, _ := rt.gw.Stats(r.key)
	d, _ := rt.ms.Decision(revKey(r.key))
	conc := math.Round(d.Stable*10) / 10
	snap := snapshot{desired: ps.Desired, actual: ps.Actual, ready: ps.Ready, failed: ps.Failed, reason: ps.Reason,
		everReady: ps.EverReady, inPath: gs.ActivatorInPath, phase: d.Phase, concurrency: conc}
	return snap, TideStatus{Processes: ps.Actual, ContainerConcurrency: r.cc, Concurrency: conc,
		Target: math.Round(d.Target*100) / 100, ActivatorInPath: gs.ActivatorInPath, Panicking: d.Panicking}
}

// syncStatuses enqueues revisions whose observed state changed since their status was last written: at once
// for scale, readiness, failures and the activator's place; at most every 2 s for the observed concurrency alone.
func (rt *Runtime) syncStatuses(now time.Time) {
	rt.mu.Lock()
	revs := make([]*revision, 0, len(rt.revs))
	for _, r := range rt.revs {
		revs = append(revs, r)
	}
	rt.mu.Unlock()
	for _, r := range revs {
		snap, _ := rt.observe(r)
		rt.mu.Lock()
		last, lastEnq := r.lastSnap, r.lastEnq
		rt.mu.Unlock()
		structural := snap
		structural.concurrency = last.concurrency
		if structural != last || (snap.concurrency != last.concurrency && now.Sub(lastEnq) >= 2*time.Second) {
			rt.mu.Lock()
			r.lastEnq = now
			rt.mu.Unlock()
			rt.enqueueRevision(r.key)
		}
	}
}

func wasReady(rev *servingv1.Revision) bool {
	c := rev.Status.GetCondition(servingv1.RevisionConditionResourcesAvailable)
	h := rev.Status.GetCondition(servingv1.RevisionConditionContainerHealthy)
	return c != nil && c.IsTrue() && h != nil && h.IsTrue()
}
