package runtime

// The orphan sweep. The reconcilers clean the broker up when a Trigger or Broker is deleted while tide runs
// (reconcileTrigger deletes the consumer group, deleteBrokerTopic the topic) and a tail deletes its throw-away
// group when it ends. None of that happens for what is deleted while tide is stopped (the reconciler only sees
// that the object is gone, not what it used), nor for a tail whose group outlived its process (tide killed with
// SIGKILL mid-tail). Those groups, %RETRY% topics and topics would stay on the broker forever, with their stored
// events and offsets, and a Broker created again under the same name would find the old events. So Start sweeps
// once: every tide-trigger-* group that is no existing Trigger's group, every tide-tail-* group without a connected
// consumer and every tide-broker-* topic of no existing Broker is deleted. Other names (user groups, RocketMQSource
// groups, %DLQ% topics, user topics) are never touched.
//
// Only on tide's embedded broker: an external RocketMQ cluster may be shared by several tide instances (each with
// its own store, so each would see the others' Triggers and Brokers as orphans) and by other applications, so
// there tide deletes only what it saw itself being deleted.
//
// Ordering invariant: the broker's groups and topics are listed before the store. A name that is live in the store
// is therefore never deleted: a Trigger or Broker created after the store listing has no group or topic in the
// broker listing unless an earlier object of the same key left one (a new Trigger gets a new UID, so a new group
// name; a Broker re-created under an old name gets a fresh topic from its reconciler, which runs after Start). The
// sweep runs inside Start, before the server starts any reconciler, so tide itself creates no group or topic
// while it runs.

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tide-run/tide/eventing/ingress"
	"github.com/tide-run/tide/eventing/trigger"
	"github.com/tide-run/tide/mq/admin"
)

// Name prefixes of what tide creates on the broker (trigger.Group, trigger.Tail and ingress.TopicFor; a test
// checks they still agree).
const (
	triggerGroupPrefix = "tide-trigger-"
	tailGroupPrefix    = "tide-tail-"
	brokerTopicPrefix  = "tide-broker-"
)

// sweepTimeout bounds the whole sweep; the embedded broker answers in milliseconds, so it only matters if the
// broker hangs, and then Start goes on without a finished sweep.
const sweepTimeout = 30 * time.Second

// sweepResult lists what a sweep deleted (for tests).
type sweepResult struct {
	Groups []string
	Topics []string
}

// sweepOrphans deletes orphaned tide groups and topics from the broker the name servers list (see the comment at
// the top of this file). Groups go the way a deleted Trigger's do (admin.DeleteGroup, which bus.DeleteGroup runs);
// topics through tide's own admin client, which unlike the official client's does not ask for the route again
// after deleting (and log an error when there is none). Every deletion is logged; failures are logged and skipped.
// If the broker or the store cannot be listed nothing is deleted.
func (r *Runtime) sweepOrphans(ctx context.Context, nameServers []string) sweepResult {
	var res sweepResult
	if len(nameServers) == 0 {
		return res
	}
	ctx, cancel := context.WithTimeout(admin.WithCredentials(ctx, r.opts.Credentials), sweepTimeout)
	defer cancel()
	log := r.log.With("task", "orphan-sweep")
	c, err := admin.Dial(ctx, nameServers[0])
	if err != nil {
		log.Warn("orphan sweep skipped: cannot reach the broker", "err", err)
		return res
	}
	defer c.Close()
	groups, err := c.Groups(ctx)
	if err != nil {
		log.Warn("orphan sweep skipped: listing groups", "err", err)
		return res
	}
	topics, err := c.Topics(ctx)
	if err != nil {
		log.Warn("orphan sweep skipped: listing topics", "err", err)
		return res
	}
	// The store is listed after the broker (the ordering invariant above).
	liveGroups, liveTopics, err := r.liveNames()
	if err != nil {
		log.Warn("orphan sweep skipped: listing the store", "err", err)
		return res
	}
	for _, g := range slices.Sorted(maps.Keys(groups)) {
		switch {
		case strings.HasPrefix(g, triggerGroupPrefix):
			if liveGroups[g] {
				continue
			}
			if err := admin.DeleteGroup(ctx, nameServers, g); err != nil {
				log.Warn("deleting the consumer group of a deleted Trigger failed", "group", g, "err", err)
				continue
			}
			log.Info("deleted the consumer group of a Trigger deleted while tide was stopped", "group", g)
		case strings.HasPrefix(g, tailGroupPrefix):
			ids, err := c.ConsumerIDs(ctx, g)
			if err != nil {
				log.Warn("listing the consumers of a tail group failed", "group", g, "err", err)
				continue
			}
			if len(ids) > 0 {
				continue
			}
			if err := admin.DeleteGroup(ctx, nameServers, g); err != nil {
				log.Warn("deleting a leftover tail group failed", "group", g, "err", err)
				continue
			}
			log.Info("deleted the consumer group of an ended events tail", "group", g)
		default:
			continue
		}
		res.Groups = append(res.Groups, g)
	}
	for _, t := range slices.Sorted(maps.Keys(topics)) {
		if !strings.HasPrefix(t, brokerTopicPrefix) || liveTopics[t] {
			continue
		}
		if err := c.DeleteTopic(ctx, t); err != nil {
			log.Warn("deleting the topic of a deleted Broker failed", "topic", t, "err", err)
			continue
		}
		log.Info("deleted the topic of a Broker deleted while tide was stopped", "topic", t)
		res.Topics = append(res.Topics, t)
	}
	return res
}

// liveNames returns the consumer groups of every Trigger and the topics of every Broker in the store that is not
// being deleted, whatever their state otherwise (a Trigger that is not Ready keeps its group and offsets; a Broker of another class has no topic,
// and a tide-broker-* topic under its name is kept until the Broker is deleted).
func (r *Runtime) liveNames() (groups, topics map[string]bool, err error) {
	trs, _, err := r.st.List(GKTrigger, "")
	if err != nil {
		return nil, nil, err
	}
	brs, _, err := r.st.List(GKBroker, "")
	if err != nil {
		return nil, nil, err
	}
	groups, topics = map[string]bool{}, map[string]bool{}
	for _, o := range trs {
		if o.GetDeletionTimestamp() != nil {
			continue // being deleted: its group goes anyway (finalizer.go), the sooner the better
		}
		groups[trigger.GroupOf(trigger.Config{Namespace: o.GetNamespace(), Name: o.GetName(), UID: string(o.GetUID())})] = true
	}
	for _, o := range brs {
		if o.GetDeletionTimestamp() != nil {
			continue
		}
		topics[ingress.TopicFor(o.GetNamespace(), o.GetName())] = true
	}
	return groups, topics, nil
}
