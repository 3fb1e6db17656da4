package rocketmqsource

import (
	"os"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/rlog"
)

func TestMain(m *testing.M) {
	// The client's logger is process-global: quiet it once, before any producer starts.
	level := os.Getenv("RLOG") // RLOG=info shows the client's own logs when debugging
	if level == "" {
		level = "error"
	}
	rlog.SetLogLevel(level)
	os.Exit(m.Run())
}
