package broker

import (
	"slices"
)

// RocketMQ 5 (gRPC) consumers in the broker's consumer lists. Apache's proxy registers every 5.x consumer with the
// broker's consumer manager when it heartbeats, so GET_CONSUMER_LIST_BY_GROUP (38), which mqadmin, the dashboards
// and the 4.x clients' rebalancing read, lists 5.x clients beside 4.x ones. tide's gRPC endpoint keeps its clients
// itself and answers through this hook.

// SetGRPCConsumers registers fn to list the ids of the 5.x consumers of a group that are connected to the gRPC
// endpoint. fn must not block (it runs inside request handlers) and must not call back into the broker.
func (b *Broker) SetGRPCConsumers(fn func(group string) []string) { b.hooks.consumers.Store(&fn) }

// allConsumerIDs is the group's 4.x (remoting) and 5.x (gRPC) consumer ids, sorted, without repeats; nil when
// there are none.
func (b *Broker) allConsumerIDs(group string) []string {
	ids := b.clients.consumerIDs(group)
	fn := b.hooks.consumers.Load()
	if fn == nil {
		return ids
	}
	more := (*fn)(group)
	if len(more) == 0 {
		return ids
	}
	ids = append(ids, more...)
	slices.Sort(ids)
	return slices.Compact(ids)
}
