package grpcproxy

import (
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

// Stream-level errors (Apache answers a bad Telemetry command with INVALID_ARGUMENT on the stream).
var (
	errClientID = grpcstatus.Error(codes.InvalidArgument, "x-mq-client-id metadata is required")
	errNoPubSub = grpcstatus.Error(codes.InvalidArgument, "there is no publishing or subscription data in settings")
)

func errBadGroup(msg string) error { return grpcstatus.Error(codes.InvalidArgument, msg) }
