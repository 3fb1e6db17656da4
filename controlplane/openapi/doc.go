// Package openapi derives the OpenAPI schemas of tide's kinds from their Go types by reflection (the kinds'
// registry.Kind.New values: knative.dev/serving and knative.dev/eventing v0.50.0, k8s.io/api, tide's apis/...),
// the one source of truth for /openapi/v2, /openapi/v3 and server-side apply's type converter.
//
// Knative's published CRD schemas are not in its Go modules, so the schemas are built from the same Go types the
// API decodes documents with: a field the decoder refuses is a field the schema does not have. What reflection
// cannot see (comments such as +optional, +listType) is left out: no field is required, lists are atomic unless
// the Go type carries patchStrategy/patchMergeKey tags (Kubernetes' core types do), types with their own JSON
// encoding are described by the OpenAPISchemaType methods Kubernetes' types have, or by a small table of
// Knative's (apis.URL, apis.VolatileTime), and anything else is left open (x-kubernetes-preserve-unknown-fields).
package openapi
