// Package fooddelivery (folder examples/food-delivery; importers that also use demo/fooddelivery name it
// foodbundle) embeds the food-delivery application's Knative bundle, the seed's YAML files written as a
// Knative cluster takes them, so `tide demo food-delivery` can apply it without reading the working tree.
//
// The files are the source of truth; this package only ships them. The same directory is what
// `tide apply -f examples/food-delivery/` and `ko apply -f examples/food-delivery/` read.
package fooddelivery

import (
	"embed"
	"fmt"
)

// FS holds the bundle's YAML files at its root, and under demo/ the platform settings the demo applies
// (DemoFiles).
//
//go:embed *.yaml demo/*.yaml
var FS embed.FS

// Files lists the bundle in the seed's one-click deploy order (the order of its kubectl apply command): identities and
// credentials first, then the source, the Broker, the service and the Trigger.
func Files() []string {
	return []string{
		"200-serviceaccount.yaml",
		"202-clusterrolebinding.yaml",
		"203-secret.yaml",
		"alirocketmqsource.yaml",
		"broker.yaml",
		"ksvc-order-service.yaml",
		"trigger.yaml",
	}
}

// DemoFiles lists the platform settings `tide demo food-delivery` applies before the bundle: the cluster-wide
// autoscaler configuration that lets a compressed day's short valleys reach zero instances. They are not part of the
// application (`kubectl apply -f` of the directory does not read subdirectories).
func DemoFiles() []string {
	return []string{"demo/config-autoscaler.yaml"}
}

// OrderServiceImage is the ko import path the Knative Service names; ko (or tide) resolves it to the program in
// examples/food-delivery/order-service.
const OrderServiceImage = "ko://github.com/tide-run/tide/examples/food-delivery/order-service"

// Read returns the contents of one bundle file.
func Read(name string) ([]byte, error) {
	b, err := FS.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("food-delivery bundle: %w", err)
	}
	return b, nil
}
