// Package config holds the autoscaler's configuration: the cluster-wide defaults (the same keys as Knative's
// config-autoscaler ConfigMap) and the per-revision settings read from the `autoscaling.knative.dev/*`
// annotations, resolved together with the revision's containerConcurrency into one Settings value that the
// decider and the scale-to-zero logic consume.
//
// Everything here is pure: parsing never touches global state, and every rejected value is reported as a
// FieldError naming the ConfigMap key or the annotation's field path
// (`metadata.annotations.autoscaling.knative.dev/...`), so a caller can refuse the whole object and change
// nothing.
//
// Behaviour follows knative.dev/serving v0.50.0 (pkg/autoscaler/config, pkg/apis/autoscaling and
// pkg/reconciler/autoscaling/resources); this is an independent implementation.
package config
