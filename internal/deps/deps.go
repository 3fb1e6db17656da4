//go:build tools

// Package deps pins the modules tide builds on (see go.mod); it is never compiled.
package deps

import (
	_ "github.com/apache/rocketmq-client-go/v2"
	_ "github.com/apache/rocketmq-client-go/v2/admin"
	_ "github.com/apache/rocketmq-client-go/v2/consumer"
	_ "github.com/apache/rocketmq-client-go/v2/producer"
	_ "github.com/cloudevents/sdk-go/sql/v2/parser"
	_ "github.com/cloudevents/sdk-go/v2"
	_ "github.com/cloudevents/sdk-go/v2/protocol/http"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "go.etcd.io/bbolt"
	_ "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	_ "k8s.io/utils/clock"
	_ "k8s.io/utils/clock/testing"
	_ "knative.dev/eventing/pkg/apis/eventing/v1"
	_ "knative.dev/pkg/apis"
	_ "knative.dev/serving/pkg/apis/serving/v1"
	_ "modernc.org/sqlite"
	_ "sigs.k8s.io/yaml"
)
