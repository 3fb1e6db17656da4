package dashboard

import (
	"context"
	"errors"
	"sort"
	"time"
)

// MetricsSource reports the platform's numbers at one instant. The dashboard calls Snapshot once per sampling
// interval with a context that expires before the next one; an implementation must be safe for concurrent use and
// should answer from memory (it is on the sampling path).
//
// Counters (Requests, Produced, Delivered, Retried, DeadLettered) are cumulative since the process started; the
// dashboard turns them into per-second rates between consecutive samples, so a source never has to keep a window.
// A counter that goes down is taken as a restart: the new value counts as the increase.
type MetricsSource interface {
	Snapshot(ctx context.Context) (Snapshot, error)
}

// MetricsFunc adapts a function to MetricsSource.
type MetricsFunc func(ctx context.Context) (Snapshot, error)

// Snapshot implements MetricsSource.
func (f MetricsFunc) Snapshot(ctx context.Context) (Snapshot, error) { return f(ctx) }

// Snapshot is what a MetricsSource knows at one instant. Each part is optional: serving fills Revisions, the broker
// Topics, eventing Deliveries, and MergeMetrics combines them. A source reports everything it knows, including
// revisions at zero instances: the page draws a revision or topic missing from a sample as a gap, not as zero.
type Snapshot struct {
	Revisions  []RevisionStats
	Topics     []TopicStats
	Deliveries []DeliveryStats
}

func (s Snapshot) empty() bool { return len(s.Revisions)+len(s.Topics)+len(s.Deliveries) == 0 }

// RevisionStats is one Knative Revision's scale and load.
type RevisionStats struct {
	Namespace string
	Service   string // the owning Service (label serving.knative.dev/service); empty for a bare Configuration
	Revision  string
	// DesiredInstances is what the autoscaler asked for; ReadyInstances is how many pass their readiness probe.
	DesiredInstances int
	ReadyInstances   int
	// Requests is the cumulative number of requests the revision's instances (and the activator on their behalf)
	// have answered.
	Requests uint64
	// Concurrency is the number of requests in flight right now, across instances.
	Concurrency float64
}

// TopicStats is one RocketMQ topic.
type TopicStats struct {
	Topic string
	// Produced is the cumulative number of messages appended to the topic (all queues).
	Produced uint64
	Groups   []GroupStats
}

// GroupStats is one consumer group on a topic.
type GroupStats struct {
	Group string `json:"group"`
	// Lag is the number of messages appended but not yet acknowledged by the group (max offset - committed offset,
	// summed over queues).
	Lag int64 `json:"lag"`
}

// DeliveryStats is one eventing component that delivers events: a Trigger or a source such as RocketMQSource.
type DeliveryStats struct {
	Kind      string // "Trigger", "RocketMQSource", ...
	Namespace string
	Name      string
	// Delivered counts events the subscriber or sink accepted; Retried counts redelivery attempts after a failed
	// one; DeadLettered counts events given up on and sent to the dead-letter sink (or dropped when none is set).
	Delivered    uint64
	Retried      uint64
	DeadLettered uint64
}

// ErrNoMetrics is returned by MergeMetrics' source when every merged source failed.
var ErrNoMetrics = errors.New("dashboard: no metrics source answered")

// MergeMetrics returns a MetricsSource that asks each source in turn and concatenates their snapshots. A failing
// source does not blank the others: the result holds what the healthy ones reported, together with the failures
// joined into the error (the dashboard draws the partial sample and shows the error); when no source answered the
// error also wraps ErrNoMetrics.
func MergeMetrics(sources ...MetricsSource) MetricsSource {
	return MetricsFunc(func(ctx context.Context) (Snapshot, error) {
		var out Snapshot
		var errs []error
		answered := 0
		for _, s := range sources {
			if s == nil {
				continue
			}
			snap, err := s.Snapshot(ctx)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			answered++
			out.Revisions = append(out.Revisions, snap.Revisions...)
			out.Topics = append(out.Topics, snap.Topics...)
			out.Deliveries = append(out.Deliveries, snap.Deliveries...)
		}
		if answered == 0 && len(errs) > 0 {
			return Snapshot{}, errors.Join(append([]error{ErrNoMetrics}, errs...)...)
		}
		return out, errors.Join(errs...)
	})
}

// Sample is one point of the dashboard's history, as the page receives it.
type Sample struct {
	T          int64           `json:"t"` // unix milliseconds, from the dashboard's clock
	Services   []ServicePoint  `json:"services"`
	Topics     []TopicPoint    `json:"topics"`
	Deliveries []DeliveryPoint `json:"deliveries"`
}

// ServicePoint is a service's revisions summed up, plus each revision.
type ServicePoint struct {
	Namespace   string          `json:"namespace"`
	Name        string          `json:"name"`
	Desired     int             `json:"desired"`
	Ready       int             `json:"ready"`
	Rate        float64         `json:"rate"` // requests per second since the previous sample
	Concurrency float64         `json:"concurrency"`
	Revisions   []RevisionPoint `json:"revisions"`
}

// RevisionPoint is one revision within a ServicePoint.
type RevisionPoint struct {
	Name        string  `json:"name"`
	Desired     int     `json:"desired"`
	Ready       int     `json:"ready"`
	Rate        float64 `json:"rate"`
	Concurrency float64 `json:"concurrency"`
}

// TopicPoint is one topic's produce rate and its consumer groups' lag.
type TopicPoint struct {
	Topic    string       `json:"topic"`
	Produced uint64       `json:"produced"`
	Rate     float64      `json:"rate"`
	Groups   []GroupStats `json:"groups"`
}

// DeliveryPoint is one Trigger's or source's counters and their rates.
type DeliveryPoint struct {
	Kind             string  `json:"kind"`
	Namespace        string  `json:"namespace"`
	Name             string  `json:"name"`
	Delivered        uint64  `json:"delivered"`
	Retried          uint64  `json:"retried"`
	DeadLettered     uint64  `json:"deadLettered"`
	DeliveredRate    float64 `json:"deliveredRate"`
	RetriedRate      float64 `json:"retriedRate"`
	DeadLetteredRate float64 `json:"deadLetteredRate"`
}

// counters remembers the previous sample's cumulative values so the next one can be turned into rates. It is owned
// by the sampling goroutine alone.
type counters struct {
	at     time.Time
	values map[string]uint64
}

// rate returns the per-second increase of the counter key since the previous sample and records cur for the next.
// The first sight of a key, or a zero interval, yields 0; a decrease counts as a restart from zero.
func (c *counters) rate(next map[string]uint64, key string, cur uint64, dt time.Duration) float64 {
	next[key] = cur
	prev, ok := c.values[key]
	if !ok || dt <= 0 {
		return 0
	}
	inc := cur - prev
	if cur < prev {
		inc = cur
	}
	return float64(inc) / dt.Seconds()
}

// buildSample turns a snapshot taken at now into a Sample, using and then replacing the previous counters. Output
// order is stable (sorted by namespace and name) so the page's series keep their colours and positions.
func (c *counters) buildSample(now time.Time, snap Snapshot) Sample {
	var dt time.Duration
	if !c.at.IsZero() {
		dt = now.Sub(c.at)
	}
	next := make(map[string]uint64, len(c.values))
	s := Sample{T: now.UnixMilli(), Services: []ServicePoint{}, Topics: []TopicPoint{}, Deliveries: []DeliveryPoint{}}

	byService := map[[2]string]*ServicePoint{}
	for _, r := range snap.Revisions {
		svc := r.Service
		if svc == "" {
			svc = r.Revision
		}
		k := [2]string{r.Namespace, svc}
		sp := byService[k]
		if sp == nil {
			sp = &ServicePoint{Namespace: r.Namespace, Name: svc, Revisions: []RevisionPoint{}}
			byService[k] = sp
		}
		rp := RevisionPoint{
			Name: r.Revision, Desired: r.DesiredInstances, Ready: r.ReadyInstances, Concurrency: r.Concurrency,
			Rate: c.rate(next, "rev\x00"+r.Namespace+"\x00"+r.Revision, r.Requests, dt),
		}
		sp.Desired += rp.Desired
		sp.Ready += rp.Ready
		sp.Rate += rp.Rate
		sp.Concurrency += rp.Concurrency
		sp.Revisions = append(sp.Revisions, rp)
	}
	for _, sp := range byService {
		sort.Slice(sp.Revisions, func(i, j int) bool { return sp.Revisions[i].Name < sp.Revisions[j].Name })
		s.Services = append(s.Services, *sp)
	}
	sort.Slice(s.Services, func(i, j int) bool {
		a, b := s.Services[i], s.Services[j]
		return a.Namespace < b.Namespace || (a.Namespace == b.Namespace && a.Name < b.Name)
	})

	for _, t := range snap.Topics {
		groups := append([]GroupStats{}, t.Groups...)
		sort.Slice(groups, func(i, j int) bool { return groups[i].Group < groups[j].Group })
		s.Topics = append(s.Topics, TopicPoint{
			Topic: t.Topic, Produced: t.Produced, Groups: groups,
			Rate: c.rate(next, "topic\x00"+t.Topic, t.Produced, dt),
		})
	}
	sort.Slice(s.Topics, func(i, j int) bool { return s.Topics[i].Topic < s.Topics[j].Topic })

	for _, d := range snap.Deliveries {
		key := d.Kind + "\x00" + d.Namespace + "\x00" + d.Name + "\x00"
		s.Deliveries = append(s.Deliveries, DeliveryPoint{
			Kind: d.Kind, Namespace: d.Namespace, Name: d.Name,
			Delivered: d.Delivered, Retried: d.Retried, DeadLettered: d.DeadLettered,
			DeliveredRate:    c.rate(next, key+"d", d.Delivered, dt),
			RetriedRate:      c.rate(next, key+"r", d.Retried, dt),
			DeadLetteredRate: c.rate(next, key+"x", d.DeadLettered, dt),
		})
	}
	sort.Slice(s.Deliveries, func(i, j int) bool {
		a, b := s.Deliveries[i], s.Deliveries[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Namespace < b.Namespace || (a.Namespace == b.Namespace && a.Name < b.Name)
	})

	c.at = now
	c.values = next
	return s
}
