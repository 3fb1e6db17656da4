package grpcproxy

import (
	"testing"
	"time"
)

// TestExpireKeepsANewClient: a client whose Telemetry stream has just opened (no Settings, so no stream recorded
// yet) survives an expiry pass; one whose stream ended longer than clientExpiry ago does not.
func TestExpireKeepsANewClient(t *testing.T) {
	tbl := newClientTable()
	fresh := tbl.get("fresh", true)
	old := tbl.get("old", true)
	old.lastSeen = time.Now().Add(-2 * clientExpiry)
	tbl.expire(time.Now().Add(-clientExpiry))
	if tbl.get("fresh", false) != fresh {
		t.Error("a client whose stream has just opened was forgotten before its Settings arrived")
	}
	if tbl.get("old", false) != nil {
		t.Error("a client without a stream, not heard from for longer than clientExpiry, was kept")
	}
}
