package mq

import "github.com/tide-run/tide/mq/mqmeta"

// The methods below are the embedded server's in-process admin surface: what tide's tests, benchmarks and embedders
// need to set up topics and observe groups without a round trip through the protocol. They are the broker's own
// answers (the same that mq/admin gets over the wire), in mq/mqmeta's vocabulary; the broker and store themselves
// stay under mq/internal. Each must be called between Start and Shutdown.

// CreateTopic creates or updates a topic (UPDATE_AND_CREATE_TOPIC in-process); ReadQueueNums and WriteQueueNums
// must be 1..1024 and the name valid (mqmeta.ValidateTopic). A zero Perm means read-write.
func (s *Server) CreateTopic(t mqmeta.TopicConfig) error { return s.broker.CreateTopic(t) }

// Topic returns a topic's config; a group's %RETRY% topic is created on first use, as the broker does (its %DLQ%
// topic by the first dead letter).
func (s *Server) Topic(name string) (mqmeta.TopicConfig, bool) { return s.broker.Topic(name) }

// Topics returns every topic's config, by name.
func (s *Server) Topics() map[string]mqmeta.TopicConfig { return s.broker.Topics() }

// GroupConfigs returns every subscription group's config, by name.
func (s *Server) GroupConfigs() map[string]mqmeta.GroupConfig { return s.broker.GroupConfigs() }

// GroupOffsets returns a group's committed offsets, topic -> queue -> offset.
func (s *Server) GroupOffsets(group string) map[string]map[int32]int64 {
	return s.broker.GroupOffsets(group)
}

// ConsumeStats lists a group's offsets and lag per queue, for every topic it has offsets on (or just topic).
func (s *Server) ConsumeStats(group, topic string) []mqmeta.QueueStat {
	return s.broker.ConsumeStats(group, topic)
}

// ResetOffset moves a group's offsets on topic to the first message stored at or after ts (milliseconds; 0 is the
// earliest offset, -1 the latest), tells running consumers to switch, and returns the new offsets.
func (s *Server) ResetOffset(group, topic string, ts int64) ([]mqmeta.QueueStat, error) {
	return s.broker.ResetOffset(group, topic, ts)
}

// ConsumerIDs lists a group's connected client ids, sorted.
func (s *Server) ConsumerIDs(group string) []string { return s.broker.ConsumerIDs(group) }

// Check verifies the store's invariants (docs/mq.md: every record decodes where it stands, consume queues agree
// with the log, the checkpoint is flushed) and returns the first violation; tests call it after crashes and storms.
func (s *Server) Check() error { return s.st.Check() }

// Suspended counts the pulls parked at the broker (long polling) waiting for messages.
func (s *Server) Suspended() int { return s.broker.Suspended() }
