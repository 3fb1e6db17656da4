package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/tide-run/tide/apis/sources/v1alpha1"
	"github.com/tide-run/tide/controlplane/reconciler"
	"github.com/tide-run/tide/controlplane/store"
	"github.com/tide-run/tide/eventing/rocketmqsource"
)

// SourceStats are a RocketMQSource's counters in this process (status.deliveryStats).
type SourceStats struct {
	Delivered    int64 `json:"delivered"`
	Retried      int64 `json:"retried"`
	DeadLettered int64 `json:"deadLettered"`
}

type sourceStatus struct {
	v1alpha1.RocketMQSourceStatus `json:",inline"`
	DeliveryStats                 *SourceStats `json:"deliveryStats,omitempty"`
}

// stopTimeout bounds how long a replaced or deleted source's deliveries may finish.
const stopTimeout = 10 * time.Second

func (r *Runtime) reconcileSource(ctx context.Context, key reconciler.Key) error {
	obj, err := r.st.Get(GKSource, key.Namespace, key.Name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			r.stopSource(key)
			r.forgetStats("source", key)
			return nil
		}
		return err
	}
	var src v1alpha1.RocketMQSource
	if err := reconciler.FromUnstructured(obj, &src); err != nil {
		return err
	}
	if len(src.Spec.NameServers) == 0 {
		src.Spec.NameServers = r.defaultNameServers()
	}
	st := sourceStatus{}
	st.Observe(&src) // observedGeneration, consumerGroup, ceAttributes: shared with the cluster controller
	write := func() error {
		r.mu.Lock()
		rs := r.sources[key.String()]
		r.mu.Unlock()
		if rs != nil {
			c := rs.adapter.Counters()
			s := SourceStats{Delivered: c.Delivered, Retried: c.Retried, DeadLettered: c.DeadLettered}
			st.DeliveryStats = &s
			r.rememberStats("source", key, s)
		}
		_, err := r.status.Write(obj, st)
		return err
	}

	sink, err := r.Resolve(key.Namespace, src.Spec.Sink)
	if err != nil {
		r.stopSource(key)
		st.MarkNoSink(v1alpha1.ReasonSinkNotFound, err.Error())
		st.MarkNotDeployed(v1alpha1.ReasonSinkNotFound, "waiting for the sink")
		return write()
	}
	st.MarkSink(sink)
	var dls *url.URL
	if d := src.Spec.Delivery; d != nil && d.DeadLetterSink != nil {
		u, err := r.Resolve(key.Namespace, *d.DeadLetterSink)
		if err != nil {
			r.stopSource(key)
			st.MarkNotDeployed(v1alpha1.ReasonSinkNotFound, "spec.delivery.deadLetterSink: "+err.Error())
			return write()
		}
		dls = u.URL()
	}
	creds, err := r.credentials(key.Namespace, &src.Spec)
	if err != nil {
		r.stopSource(key)
		st.MarkNotDeployed(v1alpha1.ReasonBadCredentials, err.Error())
		return write()
	}
	cfg, err := rocketmqsource.ConfigFromSource(&src, sink.URL(), dls, creds)
	if err != nil {
		r.stopSource(key)
		st.MarkNotDeployed(v1alpha1.ReasonConsumerFailed, err.Error())
		return write()
	}
	cfg.Sender = r.sender
	cfg.Logger = r.opts.Logger
	cfg.TracerProvider = r.opts.TracerProvider
	cfg.RetryDelayLevel = r.opts.SourceRetryDelayLevel
	cfg.MessageTrace = true // `tide mq trace` shows the source beside the Triggers (whose bus writes records too)
	fp := fingerprint(cfg)

	r.mu.Lock()
	rs := r.sources[key.String()]
	r.mu.Unlock()
	if rs != nil && rs.fingerprint == fp && rs.adapter.Status().Deployed {
		st.MarkDeployed()
		return write()
	}
	if err := r.checkSourceAccess(ctx, cfg); err != nil {
		r.stopSource(key)
		st.MarkNotDeployed(v1alpha1.ReasonBadCredentials, err.Error()+" (check the Secret's keys and the broker's ACL; the source retries)")
		if werr := write(); werr != nil {
			return werr
		}
		return err // retried with backoff: the Secret or the broker's ACL file may be fixed
	}
	r.stopSource(key)
	a, err := rocketmqsource.New(cfg)
	if err != nil {
		st.MarkNotDeployed(v1alpha1.ReasonConsumerFailed, err.Error())
		return write()
	}
	if err := a.Start(ctx); err != nil {
		s := a.Status()
		sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		_ = a.Stop(sctx)
		cancel()
		reason := s.Reason
		if reason == "" {
			reason = v1alpha1.ReasonConsumerFailed
		}
		st.MarkNotDeployed(reason, err.Error())
		if werr := write(); werr != nil {
			return werr
		}
		return err // retried with backoff: the topic may appear, the name server come up
	}
	r.mu.Lock()
	if !r.started {
		r.mu.Unlock()
		sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		return a.Stop(sctx)
	}
	r.sources[key.String()] = &runningSource{adapter: a, fingerprint: fp}
	r.mu.Unlock()
	st.MarkDeployed()
	return write()
}

// stopSource stops and forgets the adapter of key, if any.
func (r *Runtime) stopSource(key reconciler.Key) {
	r.mu.Lock()
	rs := r.sources[key.String()]
	delete(r.sources, key.String())
	r.mu.Unlock()
	if rs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := rs.adapter.Stop(ctx); err != nil {
		r.log.Warn("stopping rocketmqsource", "source", key.String(), "err", err)
	}
}

// credentials reads the Secrets spec.accessKey/secretKey or spec.accessToken point at.
func (r *Runtime) credentials(namespace string, spec *v1alpha1.RocketMQSourceSpec) (rocketmqsource.Credentials, error) {
	switch {
	case spec.AccessToken != nil:
		v, err := r.secretValue(namespace, spec.AccessToken, "spec.accessToken")
		if err != nil {
			return rocketmqsource.Credentials{}, err
		}
		return rocketmqsource.CredentialsFromAccessToken(v)
	case spec.AccessKey != nil && spec.SecretKey != nil:
		ak, err := r.secretValue(namespace, spec.AccessKey, "spec.accessKey")
		if err != nil {
			return rocketmqsource.Credentials{}, err
		}
		sk, err := r.secretValue(namespace, spec.SecretKey, "spec.secretKey")
		if err != nil {
			return rocketmqsource.Credentials{}, err
		}
		return rocketmqsource.Credentials{AccessKey: strings.TrimSpace(string(ak)), SecretKey: strings.TrimSpace(string(sk))}, nil
	}
	return rocketmqsource.Credentials{}, nil
}

func (r *Runtime) secretValue(namespace string, ref *v1alpha1.SecretValueFromSource, field string) ([]byte, error) {
	if ref == nil || ref.SecretKeyRef == nil {
		return nil, fmt.Errorf("%s.secretKeyRef: required", field)
	}
	obj, err := r.st.Get(GKSecret, namespace, ref.SecretKeyRef.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: Secret %s/%s: %w", field, namespace, ref.SecretKeyRef.Name, err)
	}
	var s corev1.Secret
	if err := reconciler.FromUnstructured(obj, &s); err != nil {
		return nil, err
	}
	v, ok := s.Data[ref.SecretKeyRef.Key]
	if !ok {
		return nil, fmt.Errorf("%s: Secret %s/%s has no key %q", field, namespace, ref.SecretKeyRef.Name, ref.SecretKeyRef.Key)
	}
	return v, nil
}

// fingerprint identifies an adapter configuration; a change restarts the adapter. Credentials are hashed in.
func fingerprint(c rocketmqsource.Config) string {
	c.Sender, c.Logger, c.HTTPClient = nil, nil, nil
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
