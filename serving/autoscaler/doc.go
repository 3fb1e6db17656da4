// Package autoscaler is tide's Knative Pod Autoscaler (KPA): it decides how many instances each revision
// should run and whether the activator must be in its request path.
//
// Three layers, each usable on its own:
//
//   - Decider is Knative's per-revision scaling algorithm (pkg/autoscaler/scaling): from the stable and
//     panic window averages and the ready instance count it computes the desired scale with max scale-up and
//     scale-down rates, panic mode, activation-scale, scale-down-delay, and the excess burst capacity.
//   - Autoscaler wraps a Decider with what Knative's PodAutoscaler reconciler adds (pkg/reconciler/
//     autoscaling/kpa): min/max/initial scale, the scale-to-zero sequence (idle for the stable window, then
//     the activator in the path for the grace period and pod retention), and whether the activator is in
//     the path (target-burst-capacity -1 always, 0 only at zero).
//   - Multiscaler runs one Autoscaler per revision on a ticker (2 s by default) with an injected clock, reads
//     metrics from a metrics.Collector and ready counts from a ReadyCounter, and tells a Scaler whenever the
//     desired scale or the activator's place changes; Poke decides at once (scale from zero).
//
// Every decision takes `now` explicitly, so tests drive time with a fake clock. The package imports nothing
// of the control plane, mq or eventing; settings come from serving/autoscaler/config.
package autoscaler
