package rocketmqsource

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
)

// EnvFromSource is ConfigFromEnv's inverse: the environment of a `tide adapter rocketmq` container that runs src
// (defaulted and valid) on a cluster, delivering to sink (and deadLetter, if any). Secrets stay in the cluster:
// credentials are secretKeyRef references the kubelet resolves, never values. caCerts, when not empty, is the
// sink's PEM CA bundle (K_CA_CERTS). The result is sorted by variable name, so it is stable across reconciles.
//
// ConfigFromEnv of this environment equals ConfigFromSource of src (TestEnvFromSourceRoundTrips).
func EnvFromSource(src *v1alpha1.RocketMQSource, sink, deadLetter *url.URL, caCerts string) ([]corev1.EnvVar, error) {
	spec := &src.Spec
	var env []corev1.EnvVar
	set := func(name, value string) {
		if value != "" {
			env = append(env, corev1.EnvVar{Name: name, Value: value})
		}
	}
	secret := func(name string, ref *v1alpha1.SecretValueFromSource) {
		if ref != nil && ref.SecretKeyRef != nil {
			env = append(env, corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: ref.SecretKeyRef.DeepCopy()}})
		}
	}
	if sink != nil {
		set("K_SINK", sink.String())
	}
	set("K_CA_CERTS", caCerts)
	if o := spec.CloudEventOverrides; o != nil && len(o.Extensions) > 0 {
		b, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		set("K_CE_OVERRIDES", string(b))
	}
	set("ROCKETMQ_SOURCE_NAMESPACE", src.Namespace)
	set("ROCKETMQ_SOURCE_NAME", src.Name)
	set("ROCKETMQ_NAME_SERVERS", strings.Join(spec.NameServers, ","))
	if len(spec.Topics) == 0 {
		set("ROCKETMQ_TOPIC", spec.Topic)
	} else {
		set("ROCKETMQ_TOPICS", strings.Join(spec.AllTopics(), ","))
	}
	set("ROCKETMQ_CONSUMER_GROUP", spec.ConsumerGroup)
	if sel := spec.Selector; sel != nil {
		set("ROCKETMQ_SELECTOR_TYPE", string(sel.Type))
		set("ROCKETMQ_SELECTOR_EXPRESSION", sel.Expression)
	}
	set("ROCKETMQ_INITIAL_OFFSET", spec.InitialOffset)
	set("ROCKETMQ_ORDERING", string(spec.Ordering))
	if spec.MaxInFlight != nil {
		set("ROCKETMQ_MAX_IN_FLIGHT", strconv.Itoa(int(*spec.MaxInFlight)))
	}
	set("ROCKETMQ_NAMESPACE", spec.Namespace)
	secret("ROCKETMQ_ACCESS_KEY", spec.AccessKey)
	secret("ROCKETMQ_SECRET_KEY", spec.SecretKey)
	secret("ROCKETMQ_ACCESS_TOKEN", spec.AccessToken)
	if d := spec.Delivery; d != nil {
		if d.Retry != nil {
			set("ROCKETMQ_DELIVERY_RETRY", strconv.Itoa(int(*d.Retry)))
		}
		if d.BackoffPolicy != nil {
			set("ROCKETMQ_DELIVERY_BACKOFF_POLICY", string(*d.BackoffPolicy))
		}
		if d.BackoffDelay != nil {
			set("ROCKETMQ_DELIVERY_BACKOFF_DELAY", *d.BackoffDelay)
		}
		if d.Timeout != nil {
			set("ROCKETMQ_DELIVERY_TIMEOUT", *d.Timeout)
		}
		if d.Format != nil {
			set("ROCKETMQ_DELIVERY_FORMAT", string(*d.Format))
		}
	}
	if deadLetter != nil {
		set("ROCKETMQ_DEAD_LETTER_SINK", deadLetter.String())
	}
	slices.SortFunc(env, func(a, b corev1.EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return env, nil
}
