// Package api serves the control plane over HTTP with Kubernetes' paths and shapes, so the CLI, the dashboard and
// plain curl (or a kubectl-minded reader) see what a cluster would show:
//
//	/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}[/status]]   namespaced kinds
//	/apis/{group}/{version}/{plural}[/{name}[/status]]                   cluster-scoped kinds, or every namespace
//	/api/v1/...                                                           the core group (Secret, ConfigMap...)
//
// GET lists or gets (`?watch=true` streams JSON lines {"type":"ADDED","object":{...}}, `?labelSelector=` filters),
// POST creates, PUT updates (the status subresource with /status), DELETE deletes (cascading to owned objects).
// Errors are metav1.Status objects with reason and code. GET /readyz answers 200 only when every registered
// readiness check passes; GET /healthz answers 200 while the process serves. GET /tide/v1/kinds lists the kinds
// (discovery for clients). Other handlers (the dashboard) are mounted with Handle.
package api
