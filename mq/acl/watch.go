package acl

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"
)

// DefaultReloadInterval is how often a Watcher looks at its file (Apache's AclFileWatchService looks every 5 s).
const DefaultReloadInterval = 5 * time.Second

// WatchOptions configure a Watcher.
type WatchOptions struct {
	// Interval between looks at the file. Default DefaultReloadInterval.
	Interval time.Duration
	// Clock drives the interval (tests inject a fake one). Default the real clock.
	Clock clock.WithTicker
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Extra accounts are added to the file's on every load (tide up's internal account).
	Extra []Account
}

// Watcher holds the policy read from a file and replaces it when the file's contents change. A change that does
// not parse (or a file that disappears) keeps the last good policy and logs one line per distinct bad content.
type Watcher struct {
	path string
	opts WatchOptions
	log  *slog.Logger
	cur  atomic.Pointer[Policy]

	mu   sync.Mutex // guards seen (Reload may run from Run and from callers)
	seen [sha256.Size]byte
}

// Load reads the file; an error here is fatal to the caller (nothing to fall back to).
func Load(path string, opts WatchOptions) (*Watcher, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultReloadInterval
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	w := &Watcher{path: path, opts: opts, log: opts.Logger.With("component", "mq.acl", "file", path)}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	p, err := parseWith(path, data, opts.Extra)
	if err != nil {
		return nil, err
	}
	w.cur.Store(p)
	w.seen = sha256.Sum256(data)
	return w, nil
}

// Policy is the policy in force.
func (w *Watcher) Policy() *Policy { return w.cur.Load() }

// Check decides r with the policy in force.
func (w *Watcher) Check(r Request) error { return w.cur.Load().Check(r) }

// Path is the watched file.
func (w *Watcher) Path() string { return w.path }

// Reload reads the file now. It reports whether a new policy took effect, and the error that kept the old one.
func (w *Watcher) Reload() (bool, error) {
	data, err := os.ReadFile(w.path)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		sum := sha256.Sum256([]byte("read error: " + err.Error()))
		if sum != w.seen {
			w.seen = sum
			w.log.Error("ACL file unreadable; keeping the last good policy", "err", err)
		}
		return false, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	sum := sha256.Sum256(data)
	if sum == w.seen {
		return false, nil
	}
	w.seen = sum
	p, err := parseWith(w.path, data, w.opts.Extra)
	if err != nil {
		w.log.Error("ACL file changed but is invalid; keeping the last good policy", "err", err)
		return false, err
	}
	w.cur.Store(p)
	w.log.Info("ACL reloaded", "accounts", p.Accounts())
	return true, nil
}

// Run looks at the file every Interval until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := w.opts.Clock.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			_, _ = w.Reload()
		}
	}
}
