package grpcproxy

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
)

func msTime(ms int64) time.Time { return time.UnixMilli(ms) }

func durationMS(ms int64) *durationpb.Duration {
	return durationpb.New(time.Duration(ms) * time.Millisecond)
}
