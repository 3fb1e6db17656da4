// Package registry is tide's table of resource kinds: group, version, kind, plural, singular and short names,
// scope, whether tide acts on the kind, and the hooks that turn a user's document into a stored object the way a
// Kubernetes API server with Knative's webhooks would: strict decoding (unknown or duplicate fields are errors),
// SetDefaults, then Validate keeping only error-level results, with errors naming field paths.
//
// The table is extensible: Register adds a Kind whose New hook returns the upstream Go type (anything implementing
// knative.dev/pkg/apis Defaultable and Validatable gets defaulted and validated), or no type at all for generic,
// non-strict handling. A Registry is built once by the composition root and then only read, so it is safe for
// concurrent use after construction.
package registry
