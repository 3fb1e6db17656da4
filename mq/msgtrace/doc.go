// Package msgtrace reads RocketMQ's message-trace records: the bodies the official clients (Java's
// TraceDataEncoder, the Go client's trace dispatcher) write to RMQ_SYS_TRACE_TOPIC when tracing is on, and the
// timeline of one message built from them (produced, stored, consumed by each group, how often, with which result).
//
// A trace message's body is records separated by \x02, each a list of fields separated by \x01 whose first field
// names its type: Pub, SubBefore, SubAfter, EndTransaction, Recall. Field lists differ between client versions
// (Java appends the client host to Pub records only in old versions, the Go client appends it to Pub and SubBefore,
// SubAfter gained a time and group later); Parse accepts every variant Java's decoder accepts and skips what it
// cannot read. It is a leaf: no other tide package, so the admin client, the CLI and the dashboard can share it.
package msgtrace
