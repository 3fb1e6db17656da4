package remoting

// Codes for topic configs and their attributes (RocketMQ 5).
const (
	// GetTopicConfig (351) asks a broker for one topic's config (mqadmin, the 5.x proxy in cluster mode).
	GetTopicConfig int16 = 351
	// InvalidParameter (29) answers a request with a bad field, e.g. a MIXED message type.
	InvalidParameter int16 = 29
)
