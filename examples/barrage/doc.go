// Package barrage (folder examples/barrage; importers that also use demo/barrage name it barragebundle) embeds
// seed 003's bullet-comment ("barrage") application as Knative YAML: the seed's two Services with only their image
// lines changed to ko:// paths (the processor in ./processor, the HomePage in ./homepage), and the event-driven
// part on RocketMQ (RocketMQSource -> Broker -> Trigger -> processor) where the seed uses Kafka; kafka/ holds the
// Kafka variant (KafkaSource -> Broker -> Trigger), which `tide demo barrage --kafka` applies instead.
//
// The files are the source of truth; this package only ships them, so `tide demo barrage` can apply them without
// reading the working tree. `tide apply -f examples/barrage/` reads the same directory.
package barrage

import (
	"embed"
	"fmt"
)

// FS holds the bundle's YAML files at its root and, under demo/, the platform settings the demo applies.
//
//go:embed *.yaml demo/*.yaml kafka/*.yaml
var FS embed.FS

// Files lists the bundle in the seed's deploy order: message processing first, then the event-driven part, then the
// HomePage (the seed's steps 1 to 3).
func Files() []string {
	return []string{
		"200-serviceaccount.yaml",
		"ksvc-barrage-process.yaml",
		"broker.yaml",
		"trigger.yaml",
		"rocketmqsource.yaml",
		"ksvc-demo-barrage.yaml",
	}
}

// KafkaFiles is Files with the event-driven part on Kafka, as the seed has it (`tide demo barrage --kafka`): a
// KafkaSource reading the Kafka topic into the Broker, and the Trigger matching its events' type.
func KafkaFiles() []string {
	return []string{
		"200-serviceaccount.yaml",
		"ksvc-barrage-process.yaml",
		"broker.yaml",
		"kafka/trigger.yaml",
		"kafka/kafkasource.yaml",
		"ksvc-demo-barrage.yaml",
	}
}

// DemoFiles lists the platform settings `tide demo barrage` applies before the bundle (a short autoscaler window, so
// the processor is back at zero seconds after a burst). `kubectl apply -f` of the directory does not read them.
func DemoFiles() []string { return []string{"demo/config-autoscaler.yaml"} }

// Names in the bundle.
const (
	Namespace        = "default"
	ProcessorService = "test-barrage-process"
	HomePageService  = "demo-barrage"
	// Topic is the RocketMQ topic comments are published to (the RocketMQSource's spec.topic, the seed's
	// KAFKA_TOPIC).
	Topic          = "barrage-info"
	ProcessorImage = "ko://github.com/tide-run/tide/examples/barrage/processor"
	HomePageImage  = "ko://github.com/tide-run/tide/examples/barrage/homepage"
)

// Read returns the contents of one bundle file.
func Read(name string) ([]byte, error) {
	b, err := FS.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("barrage bundle: %w", err)
	}
	return b, nil
}
