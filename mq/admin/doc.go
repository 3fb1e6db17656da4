// Package admin is a Go client for operating a RocketMQ broker through its remoting protocol (what `tide mq` is
// built on): topic list/create/delete, subscription groups, consumer offsets and lag, offset reset, raw pulls and
// dead-letter listing. It talks to the name server to find the broker, then to the broker directly.
package admin
