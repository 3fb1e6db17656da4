package mqmeta

import "strings"

// RetryTopic is a consumer group's retry topic; DLQTopic its dead-letter topic. Both protocols use these names:
// a 4.x consumer's send-back and a 5.x consumer's lapsed receive end up in the same places.
func RetryTopic(group string) string { return RetryPrefix + group }

// DLQTopic is a consumer group's dead-letter topic.
func DLQTopic(group string) string { return DLQPrefix + group }

// IsRetryTopic reports %RETRY% topics; IsDLQTopic %DLQ% topics.
func IsRetryTopic(topic string) bool { return strings.HasPrefix(topic, RetryPrefix) }

// IsDLQTopic reports %DLQ% topics.
func IsDLQTopic(topic string) bool { return strings.HasPrefix(topic, DLQPrefix) }

// DefaultRetryMaxTimes is a group's retryMaxTimes unless configured (Java's SubscriptionGroupConfig): a 4.x
// consumer's message is reconsumed that many times, a 5.x consumer's delivered that many plus one.
const DefaultRetryMaxTimes = 16
