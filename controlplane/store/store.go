package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"
)

// Sentinel errors; returned errors wrap them.
var (
	ErrNotFound      = errors.New("not found")
	ErrConflict      = errors.New("conflict")
	ErrAlreadyExists = errors.New("already exists")
	ErrInvalid       = errors.New("invalid")
	// ErrGone: a watch asked for a resourceVersion older than the kept history; list again and watch from there.
	ErrGone = errors.New("resource version too old")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("store closed")
)

// InvalidError is an ErrInvalid about fields of one object, shaped like a Kubernetes Invalid status: its message is
// the API server's ("Kind.group \"name\" is invalid: field: Type: detail") and Errs become the status causes.
type InvalidError struct {
	GroupKind string
	Name      string
	Errs      field.ErrorList
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("%s %q is invalid: %v", e.GroupKind, e.Name, e.Errs.ToAggregate())
}

// Is makes errors.Is(err, ErrInvalid) hold.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

var (
	bucketObjects = []byte("objects") // nested bucket per GroupKind; key namespace "\x00" name; value JSON object
	bucketMeta    = []byte("meta")
	keyRV         = []byte("resourceVersion")
)

// Options configures a Store.
type Options struct {
	// Path of the database file. Required; its directory is created.
	Path string
	// Clock stamps creationTimestamp and deletionTimestamp. Default: the real clock.
	Clock clock.PassiveClock
	// ClusterScoped reports whether a GroupKind ("Kind.group", "Kind" for core) has no namespace. Default: every
	// kind is namespaced.
	ClusterScoped func(groupKind string) bool
	// WatchHistory is how many recent events are kept in memory to resume watches from a resourceVersion.
	// Default 4096.
	WatchHistory int
	// OpenTimeout bounds waiting for the database file lock (another tide on the same data dir). Default 2s.
	OpenTimeout time.Duration
	// Logger; default slog.Default(). The store adds component=store.
	Logger *slog.Logger
}

// Store is the object store. It is safe for concurrent use.
type Store struct {
	db    *bolt.DB
	clock clock.PassiveClock
	scope func(string) bool
	log   *slog.Logger

	// mu serialises writes so that resourceVersions are assigned, committed and published in the same order, and
	// guards history, floor, watchers and closed.
	mu       sync.Mutex
	history  []Event // ring of recent events, oldest first
	maxHist  int
	floor    uint64 // every event with ResourceVersion > floor is in history
	watchers map[*watcher]struct{}
	closed   bool
}

// Open opens (creating if needed) the database at opts.Path.
func Open(opts Options) (*Store, error) {
	if opts.Path == "" {
		return nil, fmt.Errorf("store: %w: Path is required", ErrInvalid)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.ClusterScoped == nil {
		opts.ClusterScoped = func(string) bool { return false }
	}
	if opts.WatchHistory <= 0 {
		opts.WatchHistory = 4096
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db, err := bolt.Open(opts.Path, 0o600, &bolt.Options{Timeout: opts.OpenTimeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("store: %s is locked (is another tide using this data dir?): %w", opts.Path, err)
		}
		return nil, fmt.Errorf("store: open %s: %w", opts.Path, err)
	}
	s := &Store{db: db, clock: opts.Clock, scope: opts.ClusterScoped, log: opts.Logger.With("component", "store"),
		maxHist: opts.WatchHistory, watchers: map[*watcher]struct{}{}}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketObjects); err != nil {
			return err
		}
		m, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		s.floor = readRV(m)
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: init %s: %w", opts.Path, err)
	}
	return s, nil
}

// Close closes the database and ends every watch.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for w := range s.watchers {
		w.stop()
	}
	s.watchers = nil
	s.mu.Unlock()
	return s.db.Close()
}

// Ping reports whether the store is usable (for readiness checks).
func (s *Store) Ping() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.View(func(tx *bolt.Tx) error { return nil })
}

// GroupKindOf derives the store's kind key from an apiVersion and kind: "Service.serving.knative.dev", or "Secret"
// for the core group.
func GroupKindOf(apiVersion, kind string) string {
	if g, _, ok := strings.Cut(apiVersion, "/"); ok {
		return kind + "." + g
	}
	return kind
}

func objGroupKind(u *unstructured.Unstructured) string {
	return GroupKindOf(u.GetAPIVersion(), u.GetKind())
}

func objKey(ns, name string) []byte { return []byte(ns + "\x00" + name) }

func readRV(m *bolt.Bucket) uint64 {
	if v := m.Get(keyRV); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func nextRV(tx *bolt.Tx) (uint64, error) {
	m := tx.Bucket(bucketMeta)
	rv := readRV(m) + 1
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], rv)
	return rv, m.Put(keyRV, b[:])
}

// CurrentResourceVersion is the store's latest resourceVersion.
func (s *Store) CurrentResourceVersion() (uint64, error) {
	var rv uint64
	err := s.db.View(func(tx *bolt.Tx) error { rv = readRV(tx.Bucket(bucketMeta)); return nil })
	return rv, err
}

func decode(b []byte) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("decode stored object: %w", err)
	}
	return u, nil
}

func encode(u *unstructured.Unstructured) ([]byte, error) { return json.Marshal(u.Object) }

// namespaceFor returns the namespace an object of kind gk is stored under.
func (s *Store) namespaceFor(gk, ns string) string {
	if s.scope(gk) {
		return ""
	}
	if ns == "" {
		return "default"
	}
	return ns
}

// ParseResourceVersion parses a resourceVersion string; "" is 0.
func ParseResourceVersion(rv string) (uint64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: resourceVersion %q is not a number", ErrInvalid, rv)
	}
	return n, nil
}

func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randomSuffix() string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	var b [5]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// specOf is everything but apiVersion, kind, metadata and status, canonically encoded: what bumps generation.
func specOf(obj map[string]any) []byte {
	rest := make(map[string]any, len(obj))
	for k, v := range obj {
		switch k {
		case "apiVersion", "kind", "metadata", "status":
		default:
			rest[k] = v
		}
	}
	b, _ := json.Marshal(rest)
	return b
}

func sameJSON(a, b any) bool {
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return bytes.Equal(ab, bb)
}
