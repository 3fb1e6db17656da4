// Package rollout holds what every `tide demo` does to bring its bundle up on a running tide: track the applied
// objects that report Ready, wait for them with progress lines, count a Service's ready instances, and make sure
// the RocketMQ topic the bundle's source reads exists. It speaks only the control plane's client API and RocketMQ's
// admin protocol, so the demos work the same against any tide.
package rollout

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/client"
	"github.com/tide-run/tide/mq/admin"
)

// ServiceLabel is the label Knative puts on a Service's Revisions.
const ServiceLabel = "serving.knative.dev/service"

// Object is one applied object whose Ready condition a demo waits for.
type Object struct {
	Kind            client.Kind
	Namespace, Name string
}

func (o Object) String() string { return strings.ToLower(o.Kind.Kind) + "/" + o.Name }

// HasReady tells whether a kind reports a Ready condition the demos wait for.
func HasReady(kind string) bool {
	switch kind {
	case "Service", "Broker", "Trigger", "RocketMQSource":
		return true
	}
	return false
}

// Wait configures WaitReady.
type Wait struct {
	Timeout  time.Duration
	Progress io.Writer
	// Note ends the first progress line (what takes long, e.g. the first build of the programs).
	Note string
	// NotReady wraps the error when Timeout passes; NotImplemented when an object's Ready reason is
	// NotImplemented (this tide does not act on its kind).
	NotReady, NotImplemented error
}

// WaitReady polls every object until its Ready condition is True, printing each as it becomes Ready and, every
// 10 s, what is still pending and why.
func WaitReady(ctx context.Context, c *client.Client, objs []Object, w Wait) error {
	deadline := time.Now().Add(w.Timeout)
	pending := append([]Object(nil), objs...)
	why := map[string]string{}
	lastReport := time.Now()
	fmt.Fprintf(w.Progress, "waiting for %d resources to be Ready (%s)\n", len(pending), w.Note)
	for len(pending) > 0 {
		var still []Object
		for _, o := range pending {
			u, err := c.Get(ctx, o.Kind, o.Namespace, o.Name)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				why[o.String()] = err.Error()
				still = append(still, o)
				continue
			}
			status, reason, msg := ReadyCondition(u)
			if status == "True" {
				fmt.Fprintf(w.Progress, "  %s Ready\n", o)
				continue
			}
			if reason == "NotImplemented" {
				return fmt.Errorf("%w: %s: %s", w.NotImplemented, o, msg)
			}
			why[o.String()] = strings.TrimSpace(fmt.Sprintf("Ready=%s %s %s", status, reason, msg))
			still = append(still, o)
		}
		pending = still
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var parts []string
			for _, o := range pending {
				parts = append(parts, o.String()+": "+why[o.String()])
			}
			return fmt.Errorf("%w after %v: %s", w.NotReady, w.Timeout, strings.Join(parts, "; "))
		}
		if time.Since(lastReport) >= 10*time.Second {
			lastReport = time.Now()
			for _, o := range pending {
				fmt.Fprintf(w.Progress, "  still waiting for %s: %s\n", o, why[o.String()])
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

// ReadyCondition returns the Ready condition's status ("" when absent), reason and message.
func ReadyCondition(u *unstructured.Unstructured) (status, reason, msg string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != "Ready" {
			continue
		}
		s, _ := m["status"].(string)
		r, _ := m["reason"].(string)
		ms, _ := m["message"].(string)
		return s, r, ms
	}
	return "", "", "no Ready condition yet"
}

// ReadyInstances sums status.actualReplicas over a Service's Revisions (the serving runtime keeps it current).
func ReadyInstances(ctx context.Context, c *client.Client, revKind client.Kind, namespace, service string) (int, error) {
	revs, _, err := c.List(ctx, revKind, namespace, client.ListOptions{LabelSelector: ServiceLabel + "=" + service})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range revs {
		v, _, _ := unstructured.NestedInt64(r.Object, "status", "actualReplicas")
		n += int(v)
	}
	return n, nil
}

// EnsureTopic creates topic (with queues queues) if RocketMQ does not have it yet: a RocketMQSource is not Ready
// until its topic exists. The broker may register with the name server a moment after tide is ready, so dialing
// is retried for up to 30 s; demo names the caller in the error.
func EnsureTopic(ctx context.Context, nameServer, topic string, queues int, demo string, progress io.Writer) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := createTopic(dctx, nameServer, topic, queues, progress)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("%s: create RocketMQ topic %q at %s: %w", demo, topic, nameServer, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func createTopic(ctx context.Context, nameServer, topic string, queues int, progress io.Writer) error {
	c, err := admin.Dial(ctx, nameServer)
	if err != nil {
		return err
	}
	defer c.Close()
	topics, err := c.TopicList(ctx)
	if err != nil {
		return err
	}
	for _, t := range topics {
		if t == topic {
			return nil
		}
	}
	if err := c.CreateTopic(ctx, topic, queues); err != nil {
		return err
	}
	fmt.Fprintf(progress, "rocketmq topic %s created (%d queues)\n", topic, queues)
	return nil
}
