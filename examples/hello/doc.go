// Package hello holds the manifests the README's "Using it" section applies (service.yaml, broker.yaml,
// trigger.yaml). Its test runs that section's commands, as written, against a real `tide up`, so the README and
// these files cannot drift apart.
package hello
