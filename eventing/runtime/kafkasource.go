package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	corev1 "k8s.io/api/core/v1"

	"github.com/tide-run/tide/apis/sources/v1beta1"
	"github.com/tide-run/tide/controlplane/reconciler"
	"github.com/tide-run/tide/controlplane/registry"
	"github.com/tide-run/tide/controlplane/store"
	"github.com/tide-run/tide/eventing/kafkasource"
)

// GKKafkaSource is Knative's KafkaSource, reconciled here into a kafkasource.Adapter per source.
const GKKafkaSource = "KafkaSource.sources.knative.dev"

type runningKafkaSource struct {
	adapter     *kafkasource.Adapter
	fingerprint string
}

type kafkaSourceStatus struct {
	v1beta1.KafkaSourceStatus `json:",inline"`
	DeliveryStats             *SourceStats `json:"deliveryStats,omitempty"`
}

// reconcileKafkaSource resolves a KafkaSource (sink, dead-letter sink, SASL/TLS Secrets) and runs, restarts (on a
// change of the resolved configuration) or stops its adapter; status carries Knative's conditions (SinkProvided,
// ConnectionEstablished, InitialOffsetsCommitted, Deployed, Ready), sinkUri, ceAttributes and the counters.
func (r *Runtime) reconcileKafkaSource(ctx context.Context, key reconciler.Key) error {
	obj, err := r.st.Get(GKKafkaSource, key.Namespace, key.Name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			r.stopKafkaSource(key)
			r.forgetStats("kafkasource", key)
			return nil
		}
		return err
	}
	var src v1beta1.KafkaSource
	if err := reconciler.FromUnstructured(obj, &src); err != nil {
		return err
	}
	st := kafkaSourceStatus{}
	st.Observe(&src)
	write := func() error {
		r.mu.Lock()
		rs := r.kafkaSources[key.String()]
		r.mu.Unlock()
		if rs != nil {
			c := rs.adapter.Counters()
			s := SourceStats{Delivered: c.Delivered, Retried: c.Retried, DeadLettered: c.DeadLettered}
			st.DeliveryStats = &s
			r.rememberStats("kafkasource", key, s)
		}
		_, err := r.status.Write(obj, st)
		return err
	}
	notDeployed := func(reason, msg string) error {
		r.stopKafkaSource(key)
		st.MarkNotDeployed(reason, msg)
		return write()
	}

	sink, err := r.Resolve(key.Namespace, src.Spec.Sink)
	if err != nil {
		st.MarkNoSink(v1beta1.ReasonSinkNotFound, err.Error())
		return notDeployed(v1beta1.ReasonSinkNotFound, "waiting for the sink")
	}
	st.MarkSink(sink)
	var dls *url.URL
	if d := src.Spec.Delivery; d != nil && d.DeadLetterSink != nil {
		u, err := r.Resolve(key.Namespace, *d.DeadLetterSink)
		if err != nil {
			return notDeployed(v1beta1.ReasonSinkNotFound, "spec.delivery.deadLetterSink: "+err.Error())
		}
		dls = u.URL()
	}
	secrets, err := r.kafkaSecrets(key.Namespace, &src.Spec.Net)
	if err != nil {
		st.MarkConnectionNotEstablished(v1beta1.ReasonBadCredentials, err.Error())
		return notDeployed(v1beta1.ReasonBadCredentials, err.Error())
	}
	cfg, err := kafkasource.ConfigFromSource(&src, sink.URL(), dls, secrets)
	if err != nil {
		return notDeployed(v1beta1.ReasonConsumerFailed, err.Error())
	}
	cfg.Sender = r.sender
	cfg.Logger = r.opts.Logger
	cfg.TracerProvider = r.opts.TracerProvider
	fp := kafkaFingerprint(cfg)

	r.mu.Lock()
	rs := r.kafkaSources[key.String()]
	r.mu.Unlock()
	if rs != nil && rs.fingerprint == fp && rs.adapter.Status().Deployed {
		markKafkaRunning(&st)
		return write()
	}
	r.stopKafkaSource(key)
	a, err := kafkasource.New(cfg)
	if err != nil {
		return notDeployed(v1beta1.ReasonConsumerFailed, err.Error())
	}
	if err := a.Start(ctx); err != nil {
		s := a.Status()
		sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		_ = a.Stop(sctx)
		cancel()
		reason := s.Reason
		if reason == "" {
			reason = v1beta1.ReasonConsumerFailed
		}
		if s.Connected {
			st.MarkConnectionEstablished()
		} else {
			st.MarkConnectionNotEstablished(reason, s.Message)
		}
		if s.OffsetsCommitted {
			st.MarkInitialOffsetCommitted()
		} else {
			st.MarkInitialOffsetNotCommitted(reason, s.Message)
		}
		st.MarkNotDeployed(reason, s.Message)
		if werr := write(); werr != nil {
			return werr
		}
		return err // retried with backoff: the brokers may come up, the topic appear
	}
	r.mu.Lock()
	if !r.started {
		r.mu.Unlock()
		sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		return a.Stop(sctx)
	}
	r.kafkaSources[key.String()] = &runningKafkaSource{adapter: a, fingerprint: fp}
	r.mu.Unlock()
	markKafkaRunning(&st)
	return write()
}

func markKafkaRunning(st *kafkaSourceStatus) {
	st.MarkConnectionEstablished()
	st.MarkInitialOffsetCommitted()
	st.MarkDeployed()
}

// stopKafkaSource stops and forgets the adapter of key, if any.
func (r *Runtime) stopKafkaSource(key reconciler.Key) {
	r.mu.Lock()
	rs := r.kafkaSources[key.String()]
	delete(r.kafkaSources, key.String())
	r.mu.Unlock()
	if rs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := rs.adapter.Stop(ctx); err != nil {
		r.log.Warn("stopping kafkasource", "source", key.String(), "err", err)
	}
}

// kafkaSecrets reads the Secret values net.sasl and net.tls point at (only when enabled).
func (r *Runtime) kafkaSecrets(namespace string, n *v1beta1.KafkaNetSpec) (kafkasource.Secrets, error) {
	var s kafkasource.Secrets
	read := func(v v1beta1.SecretValueFromSource, field string, dst *[]byte) error {
		if v.SecretKeyRef == nil {
			return nil
		}
		b, err := r.kafkaSecretValue(namespace, v.SecretKeyRef, field)
		*dst = b
		return err
	}
	if n.SASL.Enable {
		for _, f := range []struct {
			v     v1beta1.SecretValueFromSource
			field string
			dst   *[]byte
		}{{n.SASL.User, "spec.net.sasl.user", &s.SASLUser}, {n.SASL.Password, "spec.net.sasl.password", &s.SASLPassword},
			{n.SASL.Type, "spec.net.sasl.type", &s.SASLType}} {
			if err := read(f.v, f.field, f.dst); err != nil {
				return s, err
			}
		}
	}
	if n.TLS.Enable {
		for _, f := range []struct {
			v     v1beta1.SecretValueFromSource
			field string
			dst   *[]byte
		}{{n.TLS.Cert, "spec.net.tls.cert", &s.TLSCert}, {n.TLS.Key, "spec.net.tls.key", &s.TLSKey},
			{n.TLS.CACert, "spec.net.tls.caCert", &s.TLSCACert}} {
			if err := read(f.v, f.field, f.dst); err != nil {
				return s, err
			}
		}
	}
	return s, nil
}

func (r *Runtime) kafkaSecretValue(namespace string, ref *corev1.SecretKeySelector, field string) ([]byte, error) {
	obj, err := r.st.Get(GKSecret, namespace, ref.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: Secret %s/%s: %w", field, namespace, ref.Name, err)
	}
	var s corev1.Secret
	if err := reconciler.FromUnstructured(obj, &s); err != nil {
		return nil, err
	}
	v, ok := s.Data[ref.Key]
	if !ok {
		return nil, fmt.Errorf("%s: Secret %s/%s has no key %q", field, namespace, ref.Name, ref.Key)
	}
	return v, nil
}

// kafkaFingerprint identifies an adapter configuration; a change restarts the adapter. Credentials are hashed in.
func kafkaFingerprint(c kafkasource.Config) string {
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// registerKafkaSourceKind registers KafkaSource's Go type over the generic entry: decoded strictly, defaulted and
// validated as Knative's webhook does; Knative's printer columns and the sources' categories.
func registerKafkaSourceKind(reg *registry.Registry) error {
	return reg.Register(registry.Kind{Group: v1beta1.GroupName, Version: v1beta1.Version, Kind: v1beta1.Kind,
		Plural: v1beta1.Resource, Singular: v1beta1.Singular, Namespaced: true, ActedOn: true,
		Columns:    []string{"TOPICS", "BOOTSTRAPSERVERS", "READY", "REASON"},
		Categories: registry.SourceCategories, PrinterColumns: registry.KafkaSourceColumns,
		New: func() any { return &v1beta1.KafkaSource{} }})
}
