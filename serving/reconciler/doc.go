// Package reconciler holds tide's default reconcilers for Knative Serving resources, shaped as Knative's controllers
// shape them:
//
//   - Service creates and owns a Configuration and a Route of the same name, keeps their specs in line with its own,
//     and mirrors their status (ConfigurationsReady, RoutesReady, Ready; url, address, latest revisions, traffic).
//   - Configuration creates an immutable Revision per template change, named <name>-00001, -00002... after the
//     Configuration's generation (or the template's own name), owned by the Configuration and labelled
//     serving.knative.dev/configuration, configurationGeneration, configurationUID and service; it tracks
//     latestCreatedRevisionName and latestReadyRevisionName.
//   - Route resolves its traffic targets to revisions and publishes status.url and status.address.url.
//   - Revision readiness is delegated (RevisionReconciler); until tide's serving runtime is wired in, revisions are
//     Ready=False with reason NotImplemented, and so are the Configurations, Routes and Services above them.
//
// Hooks in Options (IngressReady, Revision reconciler replacement through the Manager) let the serving runtime take
// over readiness without touching these reconcilers. The package lives beside the product it reconciles: the
// control plane provides the reconciler framework and the store but imports no product; serving/runtime and server
// import this package (they name it servingrec).
package reconciler
