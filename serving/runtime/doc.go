// Package runtime is tide's Knative Serving runtime: it turns the serving resources in the store into running
// processes behind the gateway, and reports what happens back into their status.
//
// It wires the serving libraries together (the composition root `server` only constructs it and mounts it):
//
//   - a Revision reconciler keeps one process.Pool per Revision (ko:// images built in the revision's source
//     directory, env from the store's Secrets and ConfigMaps), attaches it to the gateway, and adds the revision to
//     the autoscaler's Multiscaler with settings from the `config-autoscaler` ConfigMap (namespace
//     knative-serving, Knative's own keys), the revision's autoscaling.knative.dev annotations and its
//     containerConcurrency. It writes Knative's Revision status: ResourcesAvailable, ContainerHealthy (with the
//     program's reason and last log lines), Active, actualReplicas and desiredReplicas, plus status.tide (what
//     `tide get rev -o wide` shows);
//   - the Route reconciler's ingress hook programs the gateway's route table from the resolved traffic and only
//     then reports IngressReady;
//   - the autoscaler's Scaler sets the pool's scale and the activator's place in the path; its ReadyCounter is the
//     pool's ready count; the gateway's per-request stats are integrated per revision and recorded every second
//     (idle revisions report zeros), which drives scale out, scale down and scale to zero;
//   - instance logs are served on the API (see LogsHandler) for `tide logs`.
//
// A request travels: gateway (Host -> route -> revision by traffic weight) -> the revision's activator.Throttler
// (holds it while there is no capacity and pokes the autoscaler; enforces containerConcurrency per instance) ->
// one instance's reverse proxy.
//
// Source directory: a ko:// image is resolved where `tide apply` ran. The CLI records that directory in the
// annotation tide.dev/source-dir on the Service or Configuration it applies; the runtime reads it from the
// Revision, then its Configuration, then its Service, and falls back to Options.SourceDir (the server's working
// directory).
//
// Invariants: Runtime.mu guards the revisions map; no lock is held while calling the Multiscaler, the gateway or a
// Pool. Every process is stopped by Shutdown (drain, SIGTERM, SIGKILL after the grace period); on Linux processes
// also carry a parent-death signal, so none outlives tide (macOS has none: see docs/security-isolation.md).
package runtime
