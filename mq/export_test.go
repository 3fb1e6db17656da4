package mq

// Test-only views of the internals, for the external tests of package mq_test.

// ConsumerListCalls counts GET_CONSUMER_LIST_BY_GROUP requests per client id of a group.
func (s *Server) ConsumerListCalls(group string) map[string]int {
	return s.broker.ConsumerListCalls(group)
}

// MaxOffset is the store's next offset of a topic queue.
func (s *Server) MaxOffset(topic string, queueID int32) int64 { return s.st.MaxOffset(topic, queueID) }
