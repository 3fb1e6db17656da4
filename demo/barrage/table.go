package barrage

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
	"regexp"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Table storage configuration, from the environment (seed 003 configures Alibaba Cloud Tablestore with OTS_*):
//
//	BARRAGE_DB_DRIVER  database/sql driver name (default "sqlite", the embedded modernc.org/sqlite)
//	BARRAGE_DB_DSN     data source name for that driver; for sqlite a file path or file: URI
//	BARRAGE_DB         shorthand: the SQLite file (default DefaultDBPath)
//	TABLE_NAME         the table (default "barrage"; the seed's variable)
//	OTS_ENDPOINT       the seed's Tablestore endpoint: used as the DSN only when it is a sqlite: or file: URI; an
//	                   https:// Tablestore endpoint is not reachable from here, and the embedded table is used
//
// Only drivers linked into the programs can be named: sqlite and pgx ("postgres" selects pgx; see drivers.go). The
// SQL is portable (no upsert dialects, "?" placeholders rewritten to "$n" for PostgreSQL), so linking another
// driver is the only change.
const (
	EnvDriver    = "BARRAGE_DB_DRIVER"
	EnvDSN       = "BARRAGE_DB_DSN"
	EnvDB        = "BARRAGE_DB"
	EnvTableName = "TABLE_NAME"
	EnvOTS       = "OTS_ENDPOINT"
)

// DefaultDBPath is the SQLite file both services use when nothing is configured: an absolute path outside the
// instances' private directories, so every instance of both services shares it.
const DefaultDBPath = "/tmp/tide-barrage/barrage.db"

// TableConfig says which database and table to use.
type TableConfig struct {
	Driver, DSN, Table string
}

// ConfigFromEnv reads TableConfig from the environment as documented above.
func ConfigFromEnv(getenv func(string) string) TableConfig {
	c := TableConfig{Driver: getenv(EnvDriver), DSN: getenv(EnvDSN), Table: getenv(EnvTableName)}
	if c.Driver == "" {
		c.Driver = "sqlite"
	}
	if c.DSN == "" && c.Driver == "sqlite" {
		c.DSN = getenv(EnvDB)
		if ots := getenv(EnvOTS); c.DSN == "" && (strings.HasPrefix(ots, "sqlite:") || strings.HasPrefix(ots, "file:")) {
			c.DSN = strings.TrimPrefix(ots, "sqlite:")
		}
		if c.DSN == "" {
			c.DSN = DefaultDBPath
		}
	}
	if c.Table == "" {
		c.Table = "barrage"
	}
	return c
}

// ErrConfig is wrapped by errors in the table configuration.
var ErrConfig = errors.New("barrage table configuration")

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,40}$`)

// Table is the comments table both services share: the processor writes results, the HomePage reads them back.
// Besides <table> it keeps <table>_dead_letters (comments the Trigger gave up on) and <table>_instances (the
// processor instances alive, each heartbeating its row, so the page can count them).
type Table struct {
	db     *sql.DB
	name   string
	dollar bool // "$n" placeholders
	log    *slog.Logger
}

// OpenTable opens the database and creates the tables if needed.
func OpenTable(ctx context.Context, cfg TableConfig, log *slog.Logger) (*Table, error) {
	if log == nil {
		log = slog.Default()
	}
	if !identRE.MatchString(cfg.Table) {
		return nil, fmt.Errorf("%w: table name %q: use letters, digits and _ (at most 41)", ErrConfig, cfg.Table)
	}
	dsn := cfg.DSN
	if cfg.Driver == "sqlite" {
		path := strings.TrimPrefix(dsn, "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if path != "" && path != ":memory:" {
			if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
				return nil, fmt.Errorf("barrage table: %w", err)
			}
		}
		if !strings.Contains(dsn, "?") {
			// Several processes write one file: WAL, and wait for each other's locks rather than fail.
			q := url.Values{}
			q.Add("_pragma", "busy_timeout(5000)")
			q.Add("_pragma", "journal_mode(WAL)")
			q.Add("_pragma", "synchronous(NORMAL)")
			q.Set("_txlock", "immediate")
			dsn = "file:" + path + "?" + q.Encode()
		}
	}
	driver := driverName(cfg.Driver)
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: driver %q: %w (drivers linked in: %s)", ErrConfig, cfg.Driver, err, linkedDrivers)
	}
	db.SetMaxOpenConns(4)
	t := &Table{db: db, name: cfg.Table, dollar: driver == "pgx",
		log: log.With("component", "barrage-table")}
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS ` + t.name + ` (
	id           VARCHAR(200) PRIMARY KEY,
	run_id       VARCHAR(200) NOT NULL,
	seq          INTEGER NOT NULL,
	text         TEXT NOT NULL,
	shown        TEXT NOT NULL,
	filtered     INTEGER NOT NULL,
	sent_ns      BIGINT NOT NULL,
	processed_ns BIGINT NOT NULL,
	instance     VARCHAR(200) NOT NULL,
	trace_id     VARCHAR(32) NOT NULL,
	duplicates   INTEGER NOT NULL DEFAULT 0)`,
		`CREATE INDEX IF NOT EXISTS ` + t.name + `_processed ON ` + t.name + ` (processed_ns)`,
		`CREATE INDEX IF NOT EXISTS ` + t.name + `_run ON ` + t.name + ` (run_id)`,
		`CREATE TABLE IF NOT EXISTS ` + t.name + `_dead_letters (
	event_id    VARCHAR(200) PRIMARY KEY,
	comment_id  VARCHAR(200) NOT NULL,
	run_id      VARCHAR(200) NOT NULL,
	error_code  VARCHAR(20) NOT NULL,
	received_ns BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS ` + t.name + `_instances (
	instance   VARCHAR(200) PRIMARY KEY,
	started_ns BIGINT NOT NULL,
	seen_ns    BIGINT NOT NULL)`,
	} {
		if err := t.retry(ctx, func() error { _, err := db.ExecContext(ctx, stmt); return err }); err != nil {
			db.Close()
			return nil, fmt.Errorf("barrage table: create %s: %w", t.name, err)
		}
	}
	return t, nil
}

// Close closes the database.
func (t *Table) Close() error { return t.db.Close() }

// q rewrites "?" placeholders for drivers that number them.
func (t *Table) q(s string) string {
	if !t.dollar {
		return s
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Save writes r once: a second arrival of the same comment id (a redelivery) only counts a duplicate. inserted
// reports which happened.
func (t *Table) Save(ctx context.Context, r Result) (inserted bool, err error) {
	err = t.retry(ctx, func() error {
		for attempt := 0; attempt < 3; attempt++ {
			res, err := t.db.ExecContext(ctx, t.q(`UPDATE `+t.name+` SET duplicates = duplicates + 1 WHERE id = ?`), r.ID)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				inserted = false
				return nil
			}
			_, err = t.db.ExecContext(ctx, t.q(`INSERT INTO `+t.name+` (id, run_id, seq, text, shown, filtered, sent_ns,
processed_ns, instance, trace_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
				r.ID, r.Run, r.Seq, r.Text, r.Shown, r.Filtered, r.SentNs, r.ProcessedNs, r.Instance, r.TraceID)
			if err == nil {
				inserted = true
				return nil
			}
			if isBusy(err) {
				return err
			}
			// Another instance inserted the same id between our UPDATE and INSERT: count it as a duplicate.
			t.log.Debug("insert raced, retrying as an update", "id", r.ID, "err", err)
		}
		return fmt.Errorf("comment %s: insert and update both failed", r.ID)
	})
	if err != nil {
		return false, fmt.Errorf("barrage table: save %s: %w", r.ID, err)
	}
	return inserted, nil
}

// SaveDeadLetter records a comment the Trigger dead-lettered, once per event id.
func (t *Table) SaveDeadLetter(ctx context.Context, eventID, commentID, run, code string, at time.Time) error {
	err := t.retry(ctx, func() error {
		var n int
		if err := t.db.QueryRowContext(ctx, t.q(`SELECT COUNT(*) FROM `+t.name+`_dead_letters WHERE event_id = ?`), eventID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		_, err := t.db.ExecContext(ctx, t.q(`INSERT INTO `+t.name+`_dead_letters (event_id, comment_id, run_id, error_code,
received_ns) VALUES (?, ?, ?, ?, ?)`), eventID, commentID, run, code, at.UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("barrage table: save dead letter %s: %w", eventID, err)
	}
	return nil
}

// Since returns the results processed at or after ns (Unix nanoseconds), oldest first, at most limit.
func (t *Table) Since(ctx context.Context, ns int64, limit int) ([]Result, error) {
	var out []Result
	err := t.retry(ctx, func() error {
		out = out[:0]
		rows, err := t.db.QueryContext(ctx, t.q(`SELECT id, run_id, seq, text, shown, filtered, sent_ns, processed_ns,
instance, trace_id FROM `+t.name+` WHERE processed_ns >= ? ORDER BY processed_ns, id LIMIT ?`), ns, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r Result
			if err := rows.Scan(&r.ID, &r.Run, &r.Seq, &r.Text, &r.Shown, &r.Filtered, &r.SentNs, &r.ProcessedNs,
				&r.Instance, &r.TraceID); err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("barrage table: read results: %w", err)
	}
	return out, nil
}

// RunCounts are a run's totals in the table.
type RunCounts struct {
	Processed, Duplicates, DeadLettered int
}

// CountRun counts run's processed comments, their duplicate arrivals and its dead-lettered comments.
func (t *Table) CountRun(ctx context.Context, run string) (RunCounts, error) {
	var c RunCounts
	err := t.retry(ctx, func() error {
		return t.db.QueryRowContext(ctx, t.q(`SELECT
 (SELECT COUNT(*) FROM `+t.name+` WHERE run_id = ?),
 (SELECT COALESCE(SUM(duplicates), 0) FROM `+t.name+` WHERE run_id = ?),
 (SELECT COUNT(DISTINCT comment_id) FROM `+t.name+`_dead_letters WHERE run_id = ?)`), run, run, run).Scan(
			&c.Processed, &c.Duplicates, &c.DeadLettered)
	})
	if err != nil {
		return c, fmt.Errorf("barrage table: count run %s: %w", run, err)
	}
	return c, nil
}

// Heartbeat records that instance is alive at now (started at started).
func (t *Table) Heartbeat(ctx context.Context, instance string, started, now time.Time) error {
	return t.retry(ctx, func() error {
		res, err := t.db.ExecContext(ctx, t.q(`UPDATE `+t.name+`_instances SET seen_ns = ? WHERE instance = ?`), now.UnixNano(), instance)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		_, err = t.db.ExecContext(ctx, t.q(`INSERT INTO `+t.name+`_instances (instance, started_ns, seen_ns) VALUES (?, ?, ?)`),
			instance, started.UnixNano(), now.UnixNano())
		return err
	})
}

// Gone removes instance's heartbeat row (at a clean shutdown).
func (t *Table) Gone(ctx context.Context, instance string) error {
	return t.retry(ctx, func() error {
		_, err := t.db.ExecContext(ctx, t.q(`DELETE FROM `+t.name+`_instances WHERE instance = ?`), instance)
		return err
	})
}

// Instances counts the instances seen since since.
func (t *Table) Instances(ctx context.Context, since time.Time) (int, error) {
	var n int
	err := t.retry(ctx, func() error {
		return t.db.QueryRowContext(ctx, t.q(`SELECT COUNT(*) FROM `+t.name+`_instances WHERE seen_ns >= ?`), since.UnixNano()).Scan(&n)
	})
	return n, err
}

// retry runs fn again while SQLite reports the database busy or locked (other processes writing), with jittered
// backoff, up to about 10 s.
func (t *Table) retry(ctx context.Context, fn func() error) error {
	backoff := 2 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || !isBusy(err) || attempt >= 40 {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(backoff/2 + rand.N(backoff)):
		}
		if backoff < 250*time.Millisecond {
			backoff *= 2
		}
	}
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	return false
}
