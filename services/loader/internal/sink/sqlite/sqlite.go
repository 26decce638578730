// Package sqlite is the embedded SQLite sink (pure Go, modernc.org/sqlite):
// one transaction per batch, multi-row INSERT ... ON CONFLICT (id) DO NOTHING
// for events and records, so that a replayed row is counted and left alone.
// The event INSERTs return the days of the rows they actually inserted
// (RETURNING reports only those), and exactly those days of
// daily_attendance, with those of the other versions of punches marked
// reprocessed, are recomputed before the commit.
//
// A database file belongs to one loader process. The sink writes through a
// single connection (SQLite has one writer at a time anyway; a second one
// only probes readiness, see Ping) in WAL mode, so
// that readers such as reports are not blocked by a load. With the default
// synchronous=NORMAL a committed batch survives a crash of the process but
// not necessarily a power loss or kernel crash, which may take back the last
// batches after they were acked; WithSynchronousFull closes that window at
// the cost of an fsync per batch.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/punchflow/punchflow/services/loader/internal/daily"
	"github.com/punchflow/punchflow/services/loader/internal/migrate"
	"github.com/punchflow/punchflow/services/loader/internal/recordtable"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// Sink writes batches to one SQLite database file. It is safe for
// concurrent use: writes are serialised on its one connection. Close
// releases the file.
type Sink struct {
	db     *sql.DB
	probe  *sql.DB // a second connection, for Ping
	log    *slog.Logger
	days   *daily.Calculator
	tables recordtable.Set
}

var _ sink.Sink = (*Sink)(nil)

// Option configures Open.
type Option func(*options)

type options struct {
	busyTimeout time.Duration
	synchronous string
	rules       daily.Rules
	tables      recordtable.Set
}

// WithDailyRules sets the rules of the daily attendance summary; the default
// is daily.DefaultRules.
func WithDailyRules(r daily.Rules) Option {
	return func(o *options) { o.rules = r }
}

// WithRecordTables loads the records of the sources of set into their
// typed tables (see package recordtable), which Open creates or extends;
// records of other sources go to business_records.
func WithRecordTables(set recordtable.Set) Option {
	return func(o *options) { o.tables = set }
}

// WithBusyTimeout sets how long a statement waits for another process's
// lock on the file (a backup, an operator's sqlite3 shell) before it fails
// with SQLITE_BUSY, a transient error. The default is 5s.
func WithBusyTimeout(d time.Duration) Option {
	return func(o *options) { o.busyTimeout = d }
}

// WithSynchronousFull makes every commit durable against power loss
// (PRAGMA synchronous=FULL) at the cost of an fsync per batch. The default,
// NORMAL, is durable against a crash of the process but may lose the last
// committed batches on power loss, after the loader has acked them.
func WithSynchronousFull() Option {
	return func(o *options) { o.synchronous = "FULL" }
}

// Open opens (creating it if needed) the SQLite database at path, migrates
// its schema to the current version and returns a Sink. path is a file
// name, not a URI. The caller must Close the Sink. log may be nil.
func Open(ctx context.Context, path string, log *slog.Logger, opts ...Option) (*Sink, error) {
	o := options{busyTimeout: 5 * time.Second, synchronous: "NORMAL", rules: daily.DefaultRules()}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.rules.Validate(); err != nil {
		return nil, fmt.Errorf("open sqlite sink: daily rules: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return nil, fmt.Errorf("open sqlite sink: no database path")
	}
	db, err := sql.Open("sqlite", dsn(path, o))
	if err != nil {
		return nil, fmt.Errorf("open sqlite sink %s: %w", path, err)
	}
	// One connection: SQLite has one writer at a time, and a second
	// connection would only wait for the first.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite sink %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite sink %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite sink %s: journal mode is %q, want wal (is the path a regular file?)", path, mode)
	}
	err = migrate.Up(ctx, db, migrate.SQLite, log)
	if err == nil {
		err = migrate.RecordTables(ctx, db, migrate.SQLite, o.tables, log)
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite sink %s: %w", path, err)
	}
	// Readiness asks for the write lock on a connection of its own, with a
	// short busy timeout: a batch being written holds it for milliseconds,
	// an outage (another process holding the file) for longer.
	po := o
	po.busyTimeout = probeBusyTimeout
	probe, err := sql.Open("sqlite", dsn(path, po))
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite sink %s: %w", path, err)
	}
	probe.SetMaxOpenConns(1)
	return &Sink{db: db, probe: probe, log: log, days: daily.New(o.rules), tables: o.tables}, nil
}

// probeBusyTimeout is how long Ping waits for the write lock.
const probeBusyTimeout = time.Second

// dsn builds the modernc.org/sqlite data source name for path: a file: URI
// whose query sets every connection's pragmas, and BEGIN IMMEDIATE for
// transactions, so that a write transaction takes the write lock up front
// (waiting up to the busy timeout) instead of failing when it upgrades.
func dsn(path string, o options) string {
	// Escape what a URI path cannot hold literally.
	p := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	q := []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", o.busyTimeout.Milliseconds()),
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(" + o.synchronous + ")",
		"_pragma=foreign_keys(1)",
		"_txlock=immediate",
	}
	return "file:" + p + "?" + strings.Join(q, "&")
}

// Ping reports whether a batch could be written now, for readiness: it
// takes the database's write lock (BEGIN IMMEDIATE) and lets it go. A file
// that another process holds locked past a second (a backup, an operator's
// shell, the outage the loader waits out) makes it fail, as a lost server
// does for the other sinks; a read would still succeed then.
func (s *Sink) Ping(ctx context.Context) error {
	tx, err := s.probe.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ping sqlite: take the write lock: %w", err)
	}
	if err := tx.Rollback(); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// Close closes the database; Write and Ping fail (transiently) after it.
// Close may be called more than once.
func (s *Sink) Close() error {
	if err := errors.Join(s.db.Close(), s.probe.Close()); err != nil {
		return fmt.Errorf("close sqlite: %w", err)
	}
	return nil
}

// Write loads b as described by sink.Sink. An id that appears twice in b is
// inserted once, from its first occurrence.
func (s *Sink) Write(ctx context.Context, b sink.Batch) (sink.Result, error) {
	return sink.Write(ctx, committer{s}, "sqlite", s.log, b)
}

// committer is the SQLite half of sink.Write.
type committer struct{ s *Sink }

func (c committer) Commit(ctx context.Context, b *sink.Batch, started time.Time) (sink.Result, string, error) {
	res, err := c.s.write(ctx, b, started)
	return res, "", err
}

func (committer) RefusedData(err error) bool { return refusedData(err) }

func (c committer) RecordFailure(ctx context.Context, f sink.Failure) error {
	_, err := c.s.db.ExecContext(ctx, insertFailed, f.BatchID, f.Sink, f.Rows, f.FirstSeq, f.LastSeq,
		timestamp(f.Started), f.DurationMS, sink.OutcomeFailed, f.Error)
	return err
}

func (s *Sink) write(ctx context.Context, b *sink.Batch, started time.Time) (_ sink.Result, err error) {
	now := time.Now()
	events, err := encodeEvents(b, now)
	if err != nil {
		return sink.Result{}, err
	}
	groups := sink.GroupRecords(b, s.tables)
	records := make([][][]any, len(groups))
	for i, g := range groups {
		if records[i], err = encodeRecords(b, g, now); err != nil {
			return sink.Result{}, err
		}
	}
	first, last, err := sink.BatchSeqs(b)
	if err != nil {
		return sink.Result{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return sink.Result{}, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var res sink.Result
	if len(events) > 0 {
		keys, err := insertEvents(ctx, tx, b, events)
		if err != nil {
			return sink.Result{}, err
		}
		res.Inserted += len(keys)
		res.Duplicates += len(events) - len(keys)
		versions, err := otherVersions(ctx, tx, b)
		if err != nil {
			return sink.Result{}, err
		}
		if res.Days, err = s.recompute(ctx, tx, b.ID, append(keys, versions...), now); err != nil {
			return sink.Result{}, err
		}
	}
	for i, g := range groups {
		n, err := insertRecords(ctx, tx, g, records[i])
		if err != nil {
			return sink.Result{}, err
		}
		res.Inserted += n
		res.Duplicates += len(records[i]) - n
	}
	if _, err := tx.ExecContext(ctx, insertCommitted,
		b.ID, b.Sink, b.Len(), res.Inserted, res.Duplicates, first, last,
		timestamp(started), time.Since(started).Milliseconds(), sink.OutcomeCommitted); err != nil {
		return sink.Result{}, fmt.Errorf("record batch in load_batches: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return sink.Result{}, fmt.Errorf("commit: %w", err)
	}
	return res, nil
}

// insertEvents inserts rows chunkRows at a time and returns the day of
// every row that was new. An id already present, or earlier in the same
// statement, is skipped by ON CONFLICT and not returned.
func insertEvents(ctx context.Context, tx *sql.Tx, b *sink.Batch, rows [][]any) ([]daily.Key, error) {
	var keys []daily.Key
	err := chunked(ctx, tx, rows, insertEventsSQL, func(ctx context.Context, stmt *sql.Stmt, args []any, from, to int) error {
		rs, err := stmt.QueryContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("insert events %s to %s into attendance_events: %w", b.Events[from].ID, b.Events[to-1].ID, err)
		}
		defer rs.Close()
		for rs.Next() {
			var k daily.Key
			if err := rs.Scan(&k.Site, &k.UserID, &k.WorkDate); err != nil {
				return fmt.Errorf("insert events into attendance_events: %w", err)
			}
			keys = append(keys, k)
		}
		if err := rs.Err(); err != nil {
			return fmt.Errorf("insert events %s to %s into attendance_events: %w", b.Events[from].ID, b.Events[to-1].ID, err)
		}
		return nil
	})
	return keys, err
}

// insertRecords inserts the rows of group g chunkRows at a time and
// returns how many were new.
func insertRecords(ctx context.Context, tx *sql.Tx, g sink.RecordGroup, rows [][]any) (int, error) {
	inserted := 0
	sqlFor := func(n int) string { return insertRecordsSQL(g, n) }
	err := chunked(ctx, tx, rows, sqlFor, func(ctx context.Context, stmt *sql.Stmt, args []any, from, to int) error {
		res, err := stmt.ExecContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("insert records %s to %s into %s: %w", rows[from][0], rows[to-1][0], g.Name(), err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("insert records into %s: %w", g.Name(), err)
		}
		inserted += int(n)
		return nil
	})
	return inserted, err
}

// chunkRows is how many rows one INSERT statement carries: at most 33
// parameters each, well under SQLite's limit of 32766 per statement.
const chunkRows = 100

// chunked runs exec on rows chunkRows at a time, with a statement prepared
// by sqlFor for each chunk size (all but the last chunk share one).
func chunked(ctx context.Context, tx *sql.Tx, rows [][]any, sqlFor func(n int) string,
	exec func(ctx context.Context, stmt *sql.Stmt, args []any, from, to int) error) error {
	var (
		stmt     *sql.Stmt
		stmtRows int
		args     []any
	)
	defer func() {
		if stmt != nil {
			_ = stmt.Close()
		}
	}()
	for start := 0; start < len(rows); start += chunkRows {
		chunk := rows[start:min(start+chunkRows, len(rows))]
		if stmt == nil || stmtRows != len(chunk) {
			if stmt != nil {
				_ = stmt.Close()
			}
			var err error
			if stmt, err = tx.PrepareContext(ctx, sqlFor(len(chunk))); err != nil {
				return fmt.Errorf("prepare insert: %w", err)
			}
			stmtRows = len(chunk)
		}
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r...)
		}
		if err := exec(ctx, stmt, args, start, start+len(chunk)); err != nil {
			return err
		}
	}
	return nil
}

// insertEventsSQL returns an INSERT of n events that returns the day of
// each row it inserted.
func insertEventsSQL(n int) string {
	return values(`INSERT INTO attendance_events (`+strings.Join(sink.EventColumns, ", ")+`, loaded_at)
	VALUES `, len(sink.EventColumns)+1, n) + ` ON CONFLICT (id) DO NOTHING RETURNING site, user_id, work_date`
}

// insertRecordsSQL returns an INSERT of n records of group g.
func insertRecordsSQL(g sink.RecordGroup, n int) string {
	columns := g.Columns()
	return values(`INSERT INTO `+g.Name()+` (`+sink.ColumnList(columns, `"`)+`, loaded_at)
	VALUES `, len(columns)+1, n) + " ON CONFLICT (id) DO NOTHING"
}

// values appends n rows of cols placeholders to prefix.
func values(prefix string, cols, n int) string {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	var q strings.Builder
	q.WriteString(prefix)
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(row)
	}
	return q.String()
}

const insertCommitted = `INSERT INTO load_batches
	(batch_id, sink, row_count, inserted, duplicates, first_seq, last_seq,
	 started_at, duration_ms, outcome)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// insertFailed leaves an existing row alone: a batch id that already has a
// row (committed or failed) keeps it.
const insertFailed = `INSERT INTO load_batches
	(batch_id, sink, row_count, inserted, duplicates, first_seq, last_seq,
	 started_at, duration_ms, outcome, error)
	VALUES (?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (batch_id) DO NOTHING`
