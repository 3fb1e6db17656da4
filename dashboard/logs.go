package dashboard

import (
	"context"
	"time"
)

// LogSource returns recent output of a service's instances. The dashboard asks when a page shows that service's
// logs (every two seconds while it does), so an implementation should answer from an in-memory ring.
type LogSource interface {
	// Logs returns at most limit of the most recent lines of the service's instances (all revisions), oldest first.
	// An unknown service yields no lines and no error.
	Logs(ctx context.Context, namespace, service string, limit int) ([]LogLine, error)
}

// LogsFunc adapts a function to LogSource.
type LogsFunc func(ctx context.Context, namespace, service string, limit int) ([]LogLine, error)

// Logs implements LogSource.
func (f LogsFunc) Logs(ctx context.Context, namespace, service string, limit int) ([]LogLine, error) {
	return f(ctx, namespace, service, limit)
}

// LogLine is one line a process wrote.
type LogLine struct {
	Time     time.Time `json:"time"`
	Revision string    `json:"revision,omitempty"`
	Instance string    `json:"instance,omitempty"` // e.g. the process id or an instance index
	Stream   string    `json:"stream,omitempty"`   // "stdout" or "stderr"
	Text     string    `json:"text"`
}
