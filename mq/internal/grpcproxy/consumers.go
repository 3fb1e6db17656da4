package grpcproxy

import (
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
)

// consumerIDs lists the 5.x consumers (push and simple) of group whose Telemetry stream is open, for the broker's
// consumer lists (broker.SetGRPCConsumers), as Apache's proxy registers them with its broker. A client whose
// stream ended leaves the list at once (Apache keeps it until its channel expires, up to two minutes).
func (s *Server) consumerIDs(group string) []string {
	t := s.clients
	t.mu.Lock()
	defer t.mu.Unlock()
	var ids []string
	for id, c := range t.clients {
		c.mu.Lock()
		set := c.settings
		live := c.stream != nil
		c.mu.Unlock()
		if !live || set == nil || set.GetSubscription().GetGroup().GetName() != group {
			continue
		}
		if ct := set.GetClientType(); ct == v2.ClientType_PUSH_CONSUMER || ct == v2.ClientType_SIMPLE_CONSUMER {
			ids = append(ids, id)
		}
	}
	return ids
}
