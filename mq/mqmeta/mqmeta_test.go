package mqmeta

import "testing"

func TestIsSystemTopic(t *testing.T) {
	for name, want := range map[string]bool{
		"TBW102": true, "SCHEDULE_TOPIC_XXXX": true, "rmq_sys_wheel_timer": true, "RMQ_SYS_TRANS_HALF_TOPIC": true,
		"RMQ_SYS_TRANS_OP_HALF_TOPIC": true, "RMQ_SYS_TRACE_TOPIC": true, "%RETRY%g": true, "%DLQ%g": true,
		"DefaultCluster_REPLY_TOPIC": true, "OFFSET_MOVED_EVENT": true,
		"orders": false, "tide-broker-default_default": false, "rmq": false, "RETRY": false,
	} {
		if got := IsSystemTopic(name); got != want {
			t.Errorf("IsSystemTopic(%q) = %v, want %v", name, got, want)
		}
	}
}
