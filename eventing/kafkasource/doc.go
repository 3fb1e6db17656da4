// Package kafkasource is the data plane of Knative's KafkaSource (sources.knative.dev/v1beta1) in tide: one Adapter
// per source consumes its topics in a Kafka consumer group with franz-go, maps each record to a CloudEvent the way
// Knative's dispatcher does (mapping.go) and delivers it to the sink through eventing/delivery (retries, backoff,
// dead-letter sink).
//
// Invariant (no loss): a record's offset is committed only after its event was delivered (2xx) or dead-lettered
// per the delivery spec. A record that neither the sink nor the dead-letter sink accepted is retried in place,
// holding the commit point of its partition, until it is accepted or the adapter stops; the next poll waits for
// every record of the current one (so the group rebalances only between polls), so such a record also holds back
// new fetches for the whole source. Offsets are committed as
// the contiguous prefix of finished records per partition, so a restart redelivers from the first unfinished one
// (at-least-once: what was in flight may be delivered twice). Knative's dispatcher instead commits past a record
// whose delivery failed and that has no dead-letter sink; tide keeps it.
//
// The package knows no control plane: eventing/runtime resolves a KafkaSource (sink, Secrets) into a Config.
package kafkasource
