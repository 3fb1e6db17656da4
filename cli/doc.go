// Package cli is tide's command tree (cobra). Commands that manage resources talk only to the control-plane API
// over HTTP (package controlplane/client); `tide up` and `tide broker` hand over to the composition root (package
// server); `tide mq` speaks RocketMQ's own protocol to a broker, as any RocketMQ admin tool would.
package cli
