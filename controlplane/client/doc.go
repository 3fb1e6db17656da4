// Package client is the Go client for tide's control-plane API (package api): discovery of kinds, get, list,
// create, update, status update, delete, watch and kubectl-style apply, plus reading multi-document YAML/JSON
// manifests. The CLI uses it, and so do tests and the dashboard. A Client is safe for concurrent use.
package client
