package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ResourceSource lists the objects the dashboard shows. Resources may return objects together with an error (for
// example a cached list while the API is unreachable); the page shows both. Implementations must be safe for
// concurrent use and should answer from memory: the dashboard calls Resources once per sampling interval.
type ResourceSource interface {
	Resources(ctx context.Context) ([]Resource, error)
}

// ResourcesFunc adapts a function to ResourceSource.
type ResourcesFunc func(ctx context.Context) ([]Resource, error)

// Resources implements ResourceSource.
func (f ResourcesFunc) Resources(ctx context.Context) ([]Resource, error) { return f(ctx) }

// Resource is the dashboard's summary of one Knative-shaped object: identity, its Ready condition, and a few
// kind-specific facts worth a glance.
type Resource struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	// Ready is the status of the Ready condition: "True", "False" or "Unknown"; "" when the object has none yet.
	Ready   string `json:"ready"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	URL     string `json:"url,omitempty"`
	// Service is the owning Knative Service of a Revision (label serving.knative.dev/service).
	Service    string      `json:"service,omitempty"`
	Created    string      `json:"created,omitempty"` // RFC 3339, as the API gave it
	Conditions []Condition `json:"conditions"`
	Details    []Detail    `json:"details"`
}

// Condition is one entry of status.conditions.
type Condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// Detail is one labelled fact shown next to a resource, e.g. "broker: default".
type Detail struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ErrNotObject is returned by Summarize for JSON that is not a Kubernetes-style object.
var ErrNotObject = errors.New("dashboard: not a Kubernetes-style object")

// wireObject is the subset of a Knative-shaped object the dashboard reads. Spec and status stay generic because
// they differ per kind.
type wireObject struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Metadata   struct {
		Name              string            `json:"name"`
		Namespace         string            `json:"namespace"`
		CreationTimestamp string            `json:"creationTimestamp"`
		Labels            map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec   map[string]any `json:"spec"`
	Status struct {
		Conditions []Condition `json:"conditions"`
		URL        string      `json:"url"`
		Address    struct {
			URL string `json:"url"`
		} `json:"address"`
		LatestReadyRevisionName string `json:"latestReadyRevisionName"`
		ConsumerGroup           string `json:"consumerGroup"`
		ActualReplicas          *int   `json:"actualReplicas"`
		DesiredReplicas         *int   `json:"desiredReplicas"`
		Traffic                 []struct {
			RevisionName string `json:"revisionName"`
			Percent      *int   `json:"percent"`
			Tag          string `json:"tag"`
		} `json:"traffic"`
	} `json:"status"`
}

// Summarize reads one object as the control-plane API serves it. kind is used when the object itself carries none
// (list items sometimes omit it). It never fails on unknown or missing fields: a half-reconciled object still shows.
func Summarize(raw []byte, kind string) (Resource, error) {
	var o wireObject
	if err := json.Unmarshal(raw, &o); err != nil {
		return Resource{}, fmt.Errorf("%w: %w", ErrNotObject, err)
	}
	if o.Metadata.Name == "" {
		return Resource{}, fmt.Errorf("%w: metadata.name is empty", ErrNotObject)
	}
	if o.Kind == "" {
		o.Kind = kind
	}
	r := Resource{
		Kind: o.Kind, APIVersion: o.APIVersion, Namespace: o.Metadata.Namespace, Name: o.Metadata.Name,
		Created: o.Metadata.CreationTimestamp, Conditions: o.Status.Conditions, Details: []Detail{},
		Service: o.Metadata.Labels["serving.knative.dev/service"],
	}
	if r.Conditions == nil {
		r.Conditions = []Condition{}
	}
	for _, c := range o.Status.Conditions {
		if c.Type == "Ready" {
			r.Ready, r.Reason, r.Message = c.Status, c.Reason, c.Message
		}
	}
	r.URL = o.Status.URL
	if r.URL == "" {
		r.URL = o.Status.Address.URL
	}
	add := func(k, v string) {
		if v != "" {
			r.Details = append(r.Details, Detail{k, v})
		}
	}
	switch o.Kind {
	case "Service", "Route":
		var parts []string
		for _, t := range o.Status.Traffic {
			p := "?"
			if t.Percent != nil {
				p = strconv.Itoa(*t.Percent)
			}
			s := p + "% " + t.RevisionName
			if t.Tag != "" {
				s += " (" + t.Tag + ")"
			}
			parts = append(parts, s)
		}
		add("traffic", strings.Join(parts, ", "))
		add("latest ready", o.Status.LatestReadyRevisionName)
	case "Revision":
		add("service", r.Service)
		if cc, ok := num(o.Spec, "containerConcurrency"); ok {
			add("concurrency limit", cc)
		}
		if o.Status.DesiredReplicas != nil || o.Status.ActualReplicas != nil {
			add("instances", fmt.Sprintf("%s / %s desired", intOr(o.Status.ActualReplicas), intOr(o.Status.DesiredReplicas)))
		}
	case "Trigger":
		add("broker", str(o.Spec, "broker"))
		if f, ok := o.Spec["filter"].(map[string]any); ok {
			if attrs, ok := f["attributes"].(map[string]any); ok {
				keys := make([]string, 0, len(attrs))
				for k := range attrs {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				var parts []string
				for _, k := range keys {
					parts = append(parts, fmt.Sprintf("%s=%v", k, attrs[k]))
				}
				add("filter", strings.Join(parts, ", "))
			}
		}
		add("subscriber", destination(o.Spec["subscriber"]))
	default:
		// Sources (RocketMQSource and friends): the topic and group they read, and where they send. Field names
		// differ between sources.knative.dev (consumerGroup, topics) and the 2020 sources.eventing.knative.dev
		// (groupName, a bare ObjectReference as sink); the status may carry the group a source chose itself.
		topic := str(o.Spec, "topic")
		if ts, ok := o.Spec["topics"].([]any); ok && topic == "" {
			var names []string
			for _, t := range ts {
				if s, ok := t.(string); ok {
					names = append(names, s)
				}
			}
			topic = strings.Join(names, ", ")
		}
		add("topic", topic)
		add("group", firstNonEmpty(str(o.Spec, "consumerGroup"), str(o.Spec, "groupName"), str(o.Spec, "group"),
			o.Status.ConsumerGroup))
		if sel, ok := o.Spec["selector"].(map[string]any); ok {
			add("selector", strings.TrimSpace(str(sel, "type")+" "+str(sel, "expression")))
		}
		add("sink", destination(o.Spec["sink"]))
	}
	if d, ok := o.Spec["delivery"].(map[string]any); ok {
		if n, ok := num(d, "retry"); ok {
			add("retry", n)
		}
		add("dead letter", destination(d["deadLetterSink"]))
	}
	return r, nil
}

// destination renders a duck-typed Destination ({ref:{kind,name}, uri}), or a bare ObjectReference ({kind,name}),
// as one short string.
func destination(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	var s string
	if ref, ok := m["ref"].(map[string]any); ok {
		s = str(ref, "kind") + "/" + str(ref, "name")
	} else if str(m, "name") != "" {
		s = str(m, "kind") + "/" + str(m, "name")
	}
	if u := str(m, "uri"); u != "" {
		if s != "" {
			s += " "
		}
		s += u
	}
	return s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func str(m map[string]any, k string) string {
	if s, ok := m[k].(string); ok {
		return s
	}
	return ""
}

func num(m map[string]any, k string) (string, bool) {
	if f, ok := m[k].(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64), true
	}
	return "", false
}

func intOr(p *int) string {
	if p == nil {
		return "?"
	}
	return strconv.Itoa(*p)
}

// kindOrder is the order of the page's resource groups: what a user deploys first, then what it produces.
var kindOrder = map[string]int{
	"Service": 0, "Configuration": 1, "Route": 2, "Revision": 3, "Broker": 4, "Trigger": 5,
}

// sortResources orders by kind (known kinds first, in kindOrder; sources after, by name), namespace, then name.
func sortResources(rs []Resource) {
	rank := func(k string) int {
		if r, ok := kindOrder[k]; ok {
			return r
		}
		return len(kindOrder)
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if ra, rb := rank(a.Kind), rank(b.Kind); ra != rb {
			return ra < rb
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
}
