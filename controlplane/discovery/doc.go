// Package discovery is the API's kind table on the wire: the one description of a kind that the API server
// publishes at Path and that the Go client (and so the CLI) reads, so the two sides share a single definition
// instead of keeping copies in step. It is a leaf: wire types only, no server or client code.
package discovery
