package autoscaler

import (
	"github.com/prometheus/client_golang/prometheus"
)

// DecisionGauges exports decisions as Prometheus gauges labelled by revision, the counterparts of Knative's
// kn.revision.* autoscaler metrics. Wire Observe as Options.OnDecision and call Forget when a revision is
// removed. Safe for concurrent use.
type DecisionGauges struct {
	desired, ready, panicking, inPath, stable, panic, target, ebc *prometheus.GaugeVec
}

// NewDecisionGauges registers the gauges with reg (never the global registry, so tests and several servers
// in one process do not collide).
func NewDecisionGauges(reg prometheus.Registerer) (*DecisionGauges, error) {
	g := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "tide", Subsystem: "autoscaler", Name: name, Help: help},
			[]string{"revision"})
	}
	d := &DecisionGauges{
		desired:   g("desired_instances", "Number of instances the autoscaler wants for the revision."),
		ready:     g("ready_instances", "Number of ready instances seen by the last decision."),
		panicking: g("panic_mode", "1 while the revision's autoscaler is in panic mode."),
		inPath:    g("activator_in_path", "1 while requests go through the activator."),
		stable:    g("stable_value", "Stable-window average of the scaling metric (total over instances)."),
		panic:     g("panic_value", "Panic-window average of the scaling metric (total over instances)."),
		target:    g("target_value", "Per-instance target of the scaling metric."),
		ebc:       g("excess_burst_capacity", "Excess burst capacity; negative keeps the activator in the path."),
	}
	for _, c := range d.all() {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *DecisionGauges) all() []*prometheus.GaugeVec {
	return []*prometheus.GaugeVec{d.desired, d.ready, d.panicking, d.inPath, d.stable, d.panic, d.target, d.ebc}
}

// Observe records one decision; its signature matches Options.OnDecision.
func (d *DecisionGauges) Observe(revision string, dec Decision) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	d.desired.WithLabelValues(revision).Set(float64(dec.DesiredScale))
	d.ready.WithLabelValues(revision).Set(float64(dec.Ready))
	d.panicking.WithLabelValues(revision).Set(b(dec.Panicking))
	d.inPath.WithLabelValues(revision).Set(b(dec.ActivatorInPath))
	d.stable.WithLabelValues(revision).Set(dec.Stable)
	d.panic.WithLabelValues(revision).Set(dec.Panic)
	d.target.WithLabelValues(revision).Set(dec.Target)
	d.ebc.WithLabelValues(revision).Set(float64(dec.ExcessBurstCapacity))
}

// Forget drops a revision's series.
func (d *DecisionGauges) Forget(revision string) {
	for _, c := range d.all() {
		c.DeleteLabelValues(revision)
	}
}
