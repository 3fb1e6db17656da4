// Package v1beta1 holds the Go types of Knative's KafkaSource (sources.knative.dev/v1beta1) as tide reads them:
// the same JSON as knative-extensions/eventing-kafka-broker's control-plane/pkg/apis/sources/v1beta1 (spec with
// bootstrapServers and net.sasl/net.tls from Secrets, topics, consumerGroup, initialOffset, ordering, delivery, sink
// and ceOverrides; status with Knative's conditions and sinkUri), with Knative's defaults and validation, written
// here rather than imported so tide does not pull that module's control plane. A leaf: it imports no subsystem.
package v1beta1
