package fooddelivery

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/utils/clock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrStoreBusy is returned when the database stayed locked by other writers through every retry.
var ErrStoreBusy = errors.New("order store busy")

// StoreOptions configure OpenStore.
type StoreOptions struct {
	// Path of the SQLite file; its directory is created. Required.
	Path string
	// BusyTimeout is how long SQLite itself waits for another writer's lock before reporting SQLITE_BUSY.
	// Default 5s.
	BusyTimeout time.Duration
	// Retries is how many times a statement that still got SQLITE_BUSY/SQLITE_LOCKED is retried, with jittered
	// backoff, before ErrStoreBusy. Default 20.
	Retries int
	// Clock stamps stored_at and times the retry backoff. Default the real clock.
	Clock clock.Clock
	// Logger; default slog.Default(). The store adds component=order-store.
	Logger *slog.Logger
}

// Store is the order service's database: one SQLite file in WAL mode that several processes open at once.
//
// Invariants: an orderId is stored at most once (primary key); every further arrival of it increments that row's
// duplicates; a dead-lettered event is stored at most once per CloudEvent id. Writers serialise on SQLite's write lock;
// busy_timeout makes them queue, and the retry loop covers the cases SQLite reports busy without waiting.
type Store struct {
	db      *sql.DB
	clock   clock.Clock
	retries int
	log     *slog.Logger
}

// OrderMeta is what the service knows about an order besides its body.
type OrderMeta struct {
	EventID     string
	EventSource string
	Born        time.Time // the CloudEvent time: the RocketMQ message's born timestamp; zero when unknown
	Instance    string    // which order-service instance stored it
}

// StoredOrder is one row of the orders table.
type StoredOrder struct {
	OrderID     string
	Status      string
	ChargeCents int64
	EventID     string
	Born        time.Time // zero when the event had no time
	Stored      time.Time
	Instance    string
	Duplicates  int // further arrivals of this orderId after the first
}

// DeadLetter is one event the Trigger gave up on and sent to the dead-letter endpoint.
type DeadLetter struct {
	EventID   string
	OrderID   string // best effort: empty when the data had no readable orderId
	ErrorCode string // knativeerrorcode: the subscriber's last HTTP status
	ErrorDest string // knativeerrordest: where delivery failed
	ErrorData string // knativeerrordata: the subscriber's last response body (base64, capped by the sender)
	Received  time.Time
	Data      []byte
}

// Counts are the store's totals.
type Counts struct {
	Orders      int // distinct orders stored
	Duplicates  int // redeliveries of stored orders that were ignored
	DeadLetters int // distinct dead-lettered events
}

// schema is idempotent so every process can run it at start.
const schema = `
CREATE TABLE IF NOT EXISTS orders (
	order_id      TEXT PRIMARY KEY,
	order_status  TEXT NOT NULL,
	user_phone_no TEXT NOT NULL,
	prod_id       TEXT NOT NULL,
	prod_name     TEXT NOT NULL,
	charge_cents  INTEGER NOT NULL,
	charge_time   INTEGER NOT NULL,
	finish_time   INTEGER NOT NULL,
	event_id      TEXT NOT NULL,
	event_source  TEXT NOT NULL,
	born_ns       INTEGER NOT NULL,
	stored_ns     INTEGER NOT NULL,
	instance      TEXT NOT NULL,
	duplicates    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dead_letters (
	event_id    TEXT PRIMARY KEY,
	order_id    TEXT NOT NULL,
	error_code  TEXT NOT NULL,
	error_dest  TEXT NOT NULL,
	error_data  TEXT NOT NULL,
	received_ns INTEGER NOT NULL,
	data        BLOB
);`

// OpenStore opens (creating if needed) the order database at opts.Path.
func OpenStore(ctx context.Context, opts StoreOptions) (*Store, error) {
	if opts.Path == "" {
		return nil, errors.New("order store: StoreOptions.Path is required")
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.Retries <= 0 {
		opts.Retries = 20
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o755); err != nil {
		return nil, fmt.Errorf("order store: %w", err)
	}
	// busy_timeout first so the journal_mode switch itself waits for other processes; _txlock=immediate takes the
	// write lock at BEGIN, so a transaction never has to upgrade a read lock (which SQLite cannot wait for).
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + opts.Path + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("order store: open %s: %w", opts.Path, err)
	}
	// A few connections are enough: writes serialise on the file lock anyway, reads are rare.
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	s := &Store{db: db, clock: opts.Clock, retries: opts.Retries,
		log: opts.Logger.With("component", "order-store")}
	if err := s.retry(ctx, func() error { _, err := db.ExecContext(ctx, schema); return err }); err != nil {
		db.Close()
		return nil, fmt.Errorf("order store: create schema in %s: %w", opts.Path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// SaveOrder stores o unless an order with its orderId is already stored, in which case it counts a duplicate.
// inserted reports which happened. It is one statement, so it is atomic across processes.
func (s *Store) SaveOrder(ctx context.Context, o Order, m OrderMeta) (inserted bool, err error) {
	cents, err := ParseCents(o.ChargeMoney)
	if err != nil {
		return false, &FieldError{Field: "chargeMoney", Value: o.ChargeMoney, Reason: err.Error()}
	}
	charge, _ := parseUnix(o.ChargeTime)
	finish, _ := parseUnix(o.FinishTime)
	var born int64
	if !m.Born.IsZero() {
		born = m.Born.UnixNano()
	}
	err = s.retry(ctx, func() error {
		var dups int
		row := s.db.QueryRowContext(ctx, `
INSERT INTO orders (order_id, order_status, user_phone_no, prod_id, prod_name, charge_cents, charge_time,
                    finish_time, event_id, event_source, born_ns, stored_ns, instance)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(order_id) DO UPDATE SET duplicates = duplicates + 1
RETURNING duplicates`,
			o.OrderID, o.OrderStatus, o.UserPhoneNo, o.ProdID, o.ProdName, cents, charge, finish,
			m.EventID, m.EventSource, born, s.clock.Now().UnixNano(), m.Instance)
		if err := row.Scan(&dups); err != nil {
			return err
		}
		inserted = dups == 0
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("order store: save order %s: %w", o.OrderID, err)
	}
	return inserted, nil
}

// SaveDeadLetter records a dead-lettered event once per event id; inserted is false for a repeat.
func (s *Store) SaveDeadLetter(ctx context.Context, d DeadLetter) (inserted bool, err error) {
	if d.Received.IsZero() {
		d.Received = s.clock.Now()
	}
	err = s.retry(ctx, func() error {
		res, err := s.db.ExecContext(ctx, `
INSERT OR IGNORE INTO dead_letters (event_id, order_id, error_code, error_dest, error_data, received_ns, data)
VALUES (?, ?, ?, ?, ?, ?, ?)`,
			d.EventID, d.OrderID, d.ErrorCode, d.ErrorDest, d.ErrorData, d.Received.UnixNano(), d.Data)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		inserted = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("order store: save dead letter %s: %w", d.EventID, err)
	}
	return inserted, nil
}

// Counts returns the store's totals.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.retry(ctx, func() error {
		return s.db.QueryRowContext(ctx, `
SELECT (SELECT COUNT(*) FROM orders), (SELECT COALESCE(SUM(duplicates), 0) FROM orders),
       (SELECT COUNT(*) FROM dead_letters)`).Scan(&c.Orders, &c.Duplicates, &c.DeadLetters)
	})
	if err != nil {
		return Counts{}, fmt.Errorf("order store: counts: %w", err)
	}
	return c, nil
}

// CountPrefix counts the stored orders and dead letters whose orderId starts with prefix (a simulator run's id), so
// a demo can wait until its own orders are all accounted for without listing them.
func (s *Store) CountPrefix(ctx context.Context, prefix string) (orders, deadLetters int, err error) {
	pattern := strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(prefix) + "%"
	err = s.retry(ctx, func() error {
		return s.db.QueryRowContext(ctx, `
SELECT (SELECT COUNT(*) FROM orders WHERE order_id LIKE ? ESCAPE '\'),
       (SELECT COUNT(DISTINCT order_id) FROM dead_letters WHERE order_id LIKE ? ESCAPE '\')`,
			pattern, pattern).Scan(&orders, &deadLetters)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("order store: count %q: %w", prefix, err)
	}
	return orders, deadLetters, nil
}

// Orders returns every stored order, oldest stored first.
func (s *Store) Orders(ctx context.Context) ([]StoredOrder, error) {
	var out []StoredOrder
	err := s.retry(ctx, func() error {
		out = out[:0]
		rows, err := s.db.QueryContext(ctx, `
SELECT order_id, order_status, charge_cents, event_id, born_ns, stored_ns, instance, duplicates
FROM orders ORDER BY stored_ns, order_id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var o StoredOrder
			var born, stored int64
			if err := rows.Scan(&o.OrderID, &o.Status, &o.ChargeCents, &o.EventID, &born, &stored, &o.Instance,
				&o.Duplicates); err != nil {
				return err
			}
			if born != 0 {
				o.Born = time.Unix(0, born)
			}
			o.Stored = time.Unix(0, stored)
			out = append(out, o)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("order store: list orders: %w", err)
	}
	return out, nil
}

// DeadLetters returns every dead-lettered event, oldest first.
func (s *Store) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	var out []DeadLetter
	err := s.retry(ctx, func() error {
		out = out[:0]
		rows, err := s.db.QueryContext(ctx, `
SELECT event_id, order_id, error_code, error_dest, error_data, received_ns, data
FROM dead_letters ORDER BY received_ns, event_id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d DeadLetter
			var received int64
			if err := rows.Scan(&d.EventID, &d.OrderID, &d.ErrorCode, &d.ErrorDest, &d.ErrorData, &received,
				&d.Data); err != nil {
				return err
			}
			d.Received = time.Unix(0, received)
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("order store: list dead letters: %w", err)
	}
	return out, nil
}

// retry runs fn until it succeeds, fails with an error other than busy/locked, ctx ends, or the retries are spent.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	backoff := 2 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || !isBusy(err) {
			return err
		}
		if attempt >= s.retries {
			return fmt.Errorf("%w after %d attempts: %w", ErrStoreBusy, attempt+1, err)
		}
		s.log.Debug("database busy, retrying", "attempt", attempt+1, "err", err)
		// Jitter so processes that collided do not collide again in lockstep.
		wait := backoff/2 + rand.N(backoff)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w (while busy: %w)", ErrStoreBusy, ctx.Err(), err)
		case <-s.clock.After(wait):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// isBusy reports SQLITE_BUSY and SQLITE_LOCKED in any of their extended forms.
func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	return false
}

// DefaultDBPath is where the order service keeps its database when ORDER_DB is not set: under tide's data dir
// ($TIDE_DATA_DIR, default ./.tide) in food-delivery/orders.db, so every local instance shares one file.
func DefaultDBPath(getenv func(string) string) string {
	if p := getenv("ORDER_DB"); p != "" {
		return p
	}
	dir := getenv("TIDE_DATA_DIR")
	if dir == "" {
		dir = ".tide"
	}
	return filepath.Join(dir, "food-delivery", "orders.db")
}
