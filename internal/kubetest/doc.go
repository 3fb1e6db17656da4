// Package kubetest runs a real Kubernetes control plane in-process for tests: kube-apiserver built from the
// k8s.io/kubernetes module (the same code as the release binary, started as Kubernetes' own integration tests
// start it) on an embedded etcd (go.etcd.io/etcd/server/v3/embed), plus kube-controller-manager's garbage
// collector, so owner references cascade as on a cluster.
//
// It is for tests only: internal/archtest keeps k8s.io/kubernetes and etcd's server out of the tide binary. There
// is no kubelet and no scheduler, so Deployments get no Pods; a test that needs a Deployment to be Available writes
// its status itself, standing in for the deployment controller and the kubelet.
package kubetest
