package mq_test

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/tide-run/tide/mq"
	"github.com/tide-run/tide/mq/internal/commitlog"
)

func TestFullDiskGivesProducersAClearError(t *testing.T) {
	ffs := commitlog.NewFaultFS(commitlog.OS{})
	srv := start(t, mq.Options{FS: ffs})
	createTopic(t, srv, "disk", 1)
	p := newProducer(t, srv)
	sendN(t, p, "disk", 3, "")
	ffs.SetSpaceLeft(100) // the next record lands partially, then ENOSPC
	_, err := p.SendSync(context.Background(), primitive.NewMessage("disk", []byte("does not fit")))
	if err == nil || !strings.Contains(err.Error(), "disk is full") {
		t.Fatalf("send on a full disk: %v", err)
	}
	ffs.SetSpaceLeft(-1)
	sendN(t, p, "disk", 2, "")
	if got := srv.MaxOffset("disk", 0); got != 5 {
		t.Fatalf("queue holds %d messages, want 5 (the failed send left nothing behind)", got)
	}
	// start's cleanup runs the store consistency check: no torn record survived the failed write.
}
