package autoscaler

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// gauges gathers reg into name{revision} -> value.
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			rev := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "revision" {
					rev = l.GetValue()
				}
			}
			out[mf.GetName()+"{"+rev+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestDecisionGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	g, err := NewDecisionGauges(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewDecisionGauges(reg); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
	g.Observe("ns/r-00001", Decision{DesiredScale: 5, Ready: 3, Panicking: true, ActivatorInPath: true,
		Stable: 140, Panic: 350, Target: 70, ExcessBurstCapacity: -211})
	want := map[string]float64{
		"tide_autoscaler_desired_instances{ns/r-00001}":     5,
		"tide_autoscaler_ready_instances{ns/r-00001}":       3,
		"tide_autoscaler_panic_mode{ns/r-00001}":            1,
		"tide_autoscaler_activator_in_path{ns/r-00001}":     1,
		"tide_autoscaler_stable_value{ns/r-00001}":          140,
		"tide_autoscaler_panic_value{ns/r-00001}":           350,
		"tide_autoscaler_target_value{ns/r-00001}":          70,
		"tide_autoscaler_excess_burst_capacity{ns/r-00001}": -211,
	}
	got := gauges(t, reg)
	if len(got) != len(want) {
		t.Errorf("gathered %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	g.Forget("ns/r-00001")
	if got := gauges(t, reg); len(got) != 0 {
		t.Errorf("after Forget: %v", got)
	}
}
