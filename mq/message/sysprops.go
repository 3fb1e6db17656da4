package message

// Property names RocketMQ 5 added, used by the gRPC endpoint and understood by both protocols' clients.
const (
	// PropShardingKey carries a FIFO message's message group (5.x) on the store.
	PropShardingKey = "__SHARDINGKEY"
	// PropTraceContext carries a 5.x message's trace context.
	PropTraceContext = "TRACE_CONTEXT"
	// PropBornHost and PropBornTimestamp record what a 5.x client reported, as Apache's proxy stores them.
	PropBornHost      = "__BORNHOST"
	PropBornTimestamp = "BORN_TIMESTAMP"
	// PropCheckImmunitySec is a transaction's first-check delay in seconds (5.x orphaned transaction recovery).
	PropCheckImmunitySec = "CHECK_IMMUNITY_TIME_IN_SECONDS"
)

// systemProperties are the names Java reserves (MessageConst.STRING_HASH_SET, the ones that matter here): a
// 5.x message may not use them as user properties, and a received message does not show them as user properties.
var systemProperties = map[string]bool{
	PropTags: true, PropKeys: true, PropWaitStoreOK: true, PropDelayLevel: true, PropRetryTopic: true,
	PropRealTopic: true, PropRealQueueID: true, PropTxPrepared: true, PropProducerGroup: true,
	PropOriginMessageID: true, PropReconsumeTime: true, PropMaxReconsumeTimes: true, PropUniqKey: true,
	PropDLQOriginTopic: true, PropDLQOriginMsgID: true, PropTimerDeliverMS: true, PropTimerDelaySec: true,
	PropTimerDelayMS: true, PropShardingKey: true, PropTraceContext: true, PropBornHost: true,
	PropBornTimestamp: true, PropCheckImmunitySec: true,
	"MIN_OFFSET": true, "MAX_OFFSET": true, "BUYER_ID": true, "TRANSFER_FLAG": true, "CORRECTION_FLAG": true,
	"MQ2_FLAG": true, "MSG_REGION": true, "TRACE_ON": true, "CONSUME_START_TIME": true, "__transactionId__": true,
	"TRANSACTION_CHECK_TIMES": true, "TRAN_PREPARED_QUEUE_OFFSET": true, "INSTANCE_ID": true,
	"CORRELATION_ID": true, "REPLY_TO_CLIENT": true, "TTL": true, "ARRIVE_TIME": true, "PUSH_REPLY_TIME": true,
	"CLUSTER": true, "MSG_TYPE": true, "__STARTDELIVERTIME": true, "TIMER_OUT_MS": true, "TIMER_ENQUEUE_MS": true,
	"TIMER_DEQUEUE_MS": true, "TIMER_ROLL_TIMES": true, "TIMER_DEL_UNIQKEY": true, "POP_CK": true,
	"POP_CK_OFFSET": true, "1ST_POP_TIME": true, "INNER_NUM": true, "INNER_BASE": true, "_CATALOG": true,
}

// IsSystemProperty reports property names reserved for brokers and clients.
func IsSystemProperty(name string) bool { return systemProperties[name] }
