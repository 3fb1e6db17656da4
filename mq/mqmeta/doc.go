// Package mqmeta is RocketMQ's shared metadata vocabulary: what a broker and its clients both speak about topics and
// groups, without any of the broker's machinery. It holds topic and subscription-group configs (Java's TopicConfig
// and SubscriptionGroupConfig, in their JSON field names), permissions (Java's PermName), the system topics and the
// %RETRY%/%DLQ% prefixes, topic-name validation (Java's TopicValidator), and the consume-stats row tide's admin
// requests answer with.
//
// It is a leaf (it imports nothing of tide) so that clients — mq/admin, the CLI, the dashboard, the eventing runtime,
// the demo — can use these words without importing the broker's request handlers, whose internals stay private to
// the embedded server. The name says what it is: metadata of messaging (topics, groups, permissions), not messages
// (mq/message) or frames (mq/remoting).
package mqmeta
