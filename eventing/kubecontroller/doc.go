// Package kubecontroller is the RocketMQSource controller for a Kubernetes cluster with Knative Eventing
// (`tide controller rocketmqsource`, installed by deploy/knative/). It does on a cluster what eventing/runtime does
// inside `tide up`, except that the adapter runs as a Deployment of `tide adapter rocketmq` instead of in-process:
// for each RocketMQSource (sources.knative.dev/v1alpha1, and the 2020 sources.eventing.knative.dev/v1alpha1 form,
// converted with apis/sources/v1alpha1) it resolves the sink the way Knative sources do (a Destination's ref to an
// Addressable's status.address.url, a Kubernetes Service's cluster DNS name, or a URI), creates or updates the
// adapter Deployment (owned by the source, so deleting the source garbage-collects it; the sink reaches the adapter
// as K_SINK), and writes the status tide writes locally: SinkProvided, Deployed (from the Deployment's
// availability), Ready, sinkUri, consumerGroup, ceAttributes, observedGeneration. The condition logic is the shared
// one in apis/sources/v1alpha1 (Observe, MarkSink, PropagateDeploymentAvailability); the container environment is
// eventing/rocketmqsource.EnvFromSource, ConfigFromEnv's inverse.
//
// It speaks to the API server only through client-go (dynamic client and informers for the sources and sinks,
// typed client and informer for Deployments); it imports no tide control plane package. Tests run it against a
// real kube-apiserver (internal/kubetest).
package kubecontroller
