// Package v1alpha1 holds the Go types of the RocketMQSource resource, sources.knative.dev/v1alpha1, written in the
// Knative style: duck-typed sink and ceOverrides (duckv1.SourceSpec), Knative DeliverySpec, duckv1.SourceStatus with
// the condition set SinkProvided, Deployed, Ready; SetDefaults and Validate with field paths.
//
// It also reads the 2020 form of the resource (sources.eventing.knative.dev/v1alpha1, from
// apache/rocketmq-externals rocketmq-knative) and converts it, so old manifests keep working: Decode accepts either
// group and always returns the current form.
//
// This is a leaf package: it imports no tide subsystem.
package v1alpha1
