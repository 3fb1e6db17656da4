// Package admin is a Go client for operating a RocketMQ broker through its remoting protocol (what `tide mq` is
// built on): topic list/create/delete, subscription groups, consumer offsets and lag, offset reset, raw pulls,
// dead-letter listing and replay (the replay records in ReplayTopic), and reading a topic as a group (GroupReader).
// The CLI keeps only flags and printing, so the dashboard and the API can reuse these operations. It talks to the
// name server to find the broker, then to the broker directly.
package admin
