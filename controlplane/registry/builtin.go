package registry

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	eventingconfig "knative.dev/eventing/pkg/apis/config"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	servingconfig "knative.dev/serving/pkg/apis/config"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// Group names tide serves.
const (
	GroupServing         = "serving.knative.dev"
	GroupEventing        = "eventing.knative.dev"
	GroupSources         = "sources.knative.dev"
	GroupSourcesEventing = "sources.eventing.knative.dev" // the 2020 rocketmq-knative RocketMQSource group
	GroupRBAC            = "rbac.authorization.k8s.io"
)

// NewDefault returns a registry holding tide's built-in kinds: Knative Serving (Service, Configuration, Revision,
// Route) and Eventing (Broker, Trigger) decoded with the upstream v0.50.0 types, core Secret and ConfigMap,
// RocketMQSource in both its groups (generic until its Go types are registered over it), and the cluster kinds a
// bundle carries that tide stores without acting on (ServiceAccount, Namespace, RBAC roles and bindings).
func NewDefault() *Registry {
	r := New()
	for _, k := range BuiltinKinds() {
		_ = r.Register(k) // built-in kinds are well-formed
	}
	return r
}

// BuiltinKinds lists the kinds NewDefault registers.
func BuiltinKinds() []Kind {
	return []Kind{
		{Group: GroupServing, Version: "v1", Kind: "Service", Plural: "services", Singular: "service",
			ShortNames: []string{"kservice", "ksvc"}, Namespaced: true, ActedOn: true,
			Columns: []string{"URL", "LATESTCREATED", "LATESTREADY", "READY", "REASON"},
			New:     func() any { return &servingv1.Service{} }, WithContext: withServingFeatures},
		{Group: GroupServing, Version: "v1", Kind: "Configuration", Plural: "configurations", Singular: "configuration",
			ShortNames: []string{"config", "cfg"}, Namespaced: true, ActedOn: true,
			Columns: []string{"LATESTCREATED", "LATESTREADY", "READY", "REASON"},
			New:     func() any { return &servingv1.Configuration{} }, WithContext: withServingFeatures},
		{Group: GroupServing, Version: "v1", Kind: "Revision", Plural: "revisions", Singular: "revision",
			ShortNames: []string{"rev"}, Namespaced: true, ActedOn: true,
			Columns: []string{"CONFIG NAME", "GENERATION", "READY", "REASON"},
			New:     func() any { return &servingv1.Revision{} }, WithContext: withServingFeatures},
		{Group: GroupServing, Version: "v1", Kind: "Route", Plural: "routes", Singular: "route",
			ShortNames: []string{"rt"}, Namespaced: true, ActedOn: true,
			Columns: []string{"URL", "READY", "REASON"},
			New:     func() any { return &servingv1.Route{} }},
		{Group: GroupEventing, Version: "v1", Kind: "Broker", Plural: "brokers", Singular: "broker",
			Namespaced: true, ActedOn: true,
			Columns: []string{"URL", "READY", "REASON"},
			New:     func() any { return &eventingv1.Broker{} }, WithContext: withEventingDefaults},
		{Group: GroupEventing, Version: "v1", Kind: "Trigger", Plural: "triggers", Singular: "trigger",
			Namespaced: true, ActedOn: true,
			Columns: []string{"BROKER", "SUBSCRIBER_URI", "READY", "REASON"},
			New:     func() any { return &eventingv1.Trigger{} }},
		{Group: GroupSources, Version: "v1alpha1", Kind: "RocketMQSource", Plural: "rocketmqsources", Singular: "rocketmqsource",
			Namespaced: true, ActedOn: true, Columns: []string{"SINK", "READY", "REASON"}},
		{Group: GroupSourcesEventing, Version: "v1alpha1", Kind: "RocketMQSource", Plural: "rocketmqsources", Singular: "rocketmqsource",
			Namespaced: true, ActedOn: true, Columns: []string{"SINK", "READY", "REASON"}},
		{Version: "v1", Kind: "Secret", Plural: "secrets", Singular: "secret", Namespaced: true, ActedOn: true,
			Columns: []string{"TYPE", "DATA"},
			New:     func() any { return &corev1.Secret{} }, Default: defaultSecret},
		{Version: "v1", Kind: "ConfigMap", Plural: "configmaps", Singular: "configmap", ShortNames: []string{"cm"},
			Namespaced: true, ActedOn: true, Columns: []string{"DATA"},
			New: func() any { return &corev1.ConfigMap{} }},
		{Version: "v1", Kind: "Event", Plural: "events", Singular: "event", ShortNames: []string{"ev"},
			Namespaced: true, Columns: []string{"TYPE", "REASON", "OBJECT", "MESSAGE"},
			New: func() any { return &corev1.Event{} }},
		{Version: "v1", Kind: "ServiceAccount", Plural: "serviceaccounts", Singular: "serviceaccount", ShortNames: []string{"sa"},
			Namespaced: true, New: func() any { return &corev1.ServiceAccount{} }},
		{Version: "v1", Kind: "Namespace", Plural: "namespaces", Singular: "namespace", ShortNames: []string{"ns"},
			New: func() any { return &corev1.Namespace{} }},
		{Group: GroupRBAC, Version: "v1", Kind: "ClusterRole", Plural: "clusterroles", Singular: "clusterrole",
			New: func() any { return &rbacv1.ClusterRole{} }},
		{Group: GroupRBAC, Version: "v1", Kind: "ClusterRoleBinding", Plural: "clusterrolebindings", Singular: "clusterrolebinding",
			New: func() any { return &rbacv1.ClusterRoleBinding{} }},
		{Group: GroupRBAC, Version: "v1", Kind: "Role", Plural: "roles", Singular: "role", Namespaced: true,
			New: func() any { return &rbacv1.Role{} }},
		{Group: GroupRBAC, Version: "v1", Kind: "RoleBinding", Plural: "rolebindings", Singular: "rolebinding", Namespaced: true,
			New: func() any { return &rbacv1.RoleBinding{} }},
	}
}

// DefaultBrokerClass is the eventing.knative.dev/broker.class annotation a Broker gets when it names none, the role
// of a cluster's config-br-defaults ConfigMap (Knative's validation requires the annotation).
const DefaultBrokerClass = "RocketMQ"

func withEventingDefaults(ctx context.Context) context.Context {
	return eventingconfig.ToContext(ctx, &eventingconfig.Config{Defaults: &eventingconfig.Defaults{
		ClusterDefaultConfig: &eventingconfig.DefaultConfig{DefaultBrokerClass: DefaultBrokerClass},
	}})
}

// withServingFeatures is tide's config-features: Knative's defaults, plus kubernetes.podspec-fieldref enabled, since
// tide fills the downward API's env fields (metadata.name, metadata.namespace, ...) for every instance and the seeds'
// Services use them (a stock Knative install needs the flag turned on for the same YAML).
func withServingFeatures(ctx context.Context) context.Context {
	cfg := servingconfig.FromContextOrDefaults(ctx).DeepCopy()
	cfg.Features.PodSpecFieldRef = servingconfig.Enabled
	return servingconfig.ToContext(ctx, cfg)
}

// defaultSecret does what the API server does on write: stringData is merged into data (stringData wins) and
// dropped, and the type defaults to Opaque.
func defaultSecret(_ context.Context, obj any) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
		s.StringData = nil
	}
}
