package mqmeta

// Message query and trace vocabulary (QUERY_MESSAGE, VIEW_MESSAGE_BY_ID, message trace).
const (
	// TraceTopic is where the official clients write message-trace records (Java's TopicValidator
	// RMQ_SYS_TRACE_TOPIC; brokers create it with one queue when traceTopicEnable is on).
	TraceTopic = "RMQ_SYS_TRACE_TOPIC"
	// UniqueKeyQueryFlag is the QUERY_MESSAGE ext field saying the key is a message id (UNIQ_KEY): "true" or "false"
	// (Java's MixAll.UNIQUE_MSG_QUERY_FLAG).
	UniqueKeyQueryFlag = "_UNIQUE_KEY_QUERY"
	// DefaultQueryMaxNum is how many messages a broker returns for a unique-key query whatever maxNum says (Java's
	// defaultQueryMaxNum); QueryMaxNum caps any query (Java's maxMsgsNumBatch).
	DefaultQueryMaxNum = 32
	QueryMaxNum        = 64
)
