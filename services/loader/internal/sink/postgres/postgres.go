// Package postgres is the PostgreSQL sink: it loads micro-batches of clean
// attendance events with COPY, one transaction per batch, idempotently.
//
// The fast path copies a batch straight into attendance_events. Only when
// that collides with a row already loaded (a replay or a redelivery) is the
// transaction rolled back and the batch merged instead: copied into a
// temporary table and inserted with ON CONFLICT (id) DO NOTHING, which also
// collapses an id that appears twice within the batch.
package postgres

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/migrate"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// Sink writes batches to PostgreSQL through a pgx pool. It is safe for
// concurrent use; Close releases the pool.
type Sink struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

var _ sink.Sink = (*Sink)(nil)

// Option configures Open.
type Option func(*options)

type options struct {
	maxConns int32
}

// WithMaxConns sets the pool's maximum number of connections. Without it the
// pool uses pool_max_conns from the URL, or pgxpool's default (the greater of
// 4 and the number of CPUs), which is plenty for a loader that writes a few
// batches at a time.
func WithMaxConns(n int32) Option {
	return func(o *options) { o.maxConns = n }
}

// applicationName is reported to the server (pg_stat_activity) unless the
// URL sets application_name itself.
const applicationName = "punchflow-loader"

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string, as pgx parses it), migrates its schema to the current
// version and returns a Sink. Migrations take an advisory lock, so replicas
// may call Open at the same time. The caller must Close the Sink. log may be
// nil.
func Open(ctx context.Context, url string, log *slog.Logger, opts ...Option) (*Sink, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres sink: %w", err)
	}
	if o.maxConns > 0 {
		cfg.MaxConns = o.maxConns
		cfg.MinConns = min(cfg.MinConns, cfg.MaxConns)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = applicationName
	}

	// Migrations run on a connection of their own, closed afterwards, so
	// that the session-level migration lock can never outlive Open inside
	// a pooled connection.
	mdb := stdlib.OpenDB(*cfg.ConnConfig.Copy())
	err = migrate.Up(ctx, mdb, migrate.Postgres, log)
	if cerr := mdb.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("open postgres sink at %s:%d/%s: %w",
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres sink: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres sink at %s:%d/%s: %w",
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return &Sink{pool: pool, log: log}, nil
}

// Ping reports whether the database answers, for readiness.
func (s *Sink) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// Close waits for the connections in use to be released and closes the
// pool. Write and Ping fail (transiently) after Close. Close always returns
// nil and may be called more than once.
func (s *Sink) Close() error {
	s.pool.Close()
	return nil
}

// Write loads b as described by sink.Sink: every event whose id is new is
// inserted, b is recorded in load_batches as "committed", and both commit
// together. A batch that fails b.Validate is refused with a permanent error
// (reason proto.ReasonInvalid) and not recorded, since it may have no id.
func (s *Sink) Write(ctx context.Context, b sink.Batch) (sink.Result, error) {
	if err := b.Validate(); err != nil {
		return sink.Result{}, fault.NewPermanent(proto.ReasonInvalid, err)
	}
	began := time.Now()
	started := cmp.Or(b.Started, began)

	res, path, err := s.write(ctx, &b, started)
	if err != nil {
		err = classify(err)
		s.recordFailure(ctx, &b, started, err)
		class, _ := fault.Classify(err)
		s.log.WarnContext(ctx, "batch failed",
			slog.String("batch", b.ID),
			slog.Int("rows", len(b.Events)), slog.String("path", path),
			slog.String("class", class.String()), slog.Any("error", err))
		return sink.Result{}, fmt.Errorf("write batch %s (%d events) to postgres: %w", b.ID, len(b.Events), err)
	}
	s.log.DebugContext(ctx, "batch committed",
		slog.String("batch", b.ID),
		slog.Int("rows", len(b.Events)), slog.String("path", path),
		slog.Int("inserted", res.Inserted), slog.Int("duplicates", res.Duplicates),
		slog.Duration("took", time.Since(began)))
	return res, nil
}

// write tries the COPY fast path and falls back to the merge path when the
// batch collides with rows already present. path says which one decided.
func (s *Sink) write(ctx context.Context, b *sink.Batch, started time.Time) (_ sink.Result, path string, _ error) {
	rows, err := encode(b)
	if err != nil {
		return sink.Result{}, "encode", err
	}
	// Sorted rows take row locks in the same order in every transaction,
	// so concurrent writers of overlapping batches wait instead of
	// deadlocking.
	slices.SortStableFunc(rows, func(x, y []any) int { return cmp.Compare(x[0].(string), y[0].(string)) })

	res, err := s.copyBatch(ctx, b, rows, started)
	if err == nil {
		return res, "copy", nil
	}
	if !collides(err) {
		return sink.Result{}, "copy", err
	}
	s.log.DebugContext(ctx, "batch collides with loaded rows, merging",
		slog.String("batch", b.ID))
	res, err = s.mergeBatch(ctx, b, rows, started)
	return res, "merge", err
}

// copyBatch is the fast path: COPY every row into attendance_events.
func (s *Sink) copyBatch(ctx context.Context, b *sink.Batch, rows [][]any, started time.Time) (sink.Result, error) {
	var res sink.Result
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		n, err := tx.CopyFrom(ctx, pgx.Identifier{eventsTable}, eventColumns, pgx.CopyFromRows(rows))
		if err != nil {
			return fmt.Errorf("copy into %s: %w", eventsTable, err)
		}
		res = sink.Result{Inserted: int(n), Duplicates: len(rows) - int(n)}
		return insertBatch(ctx, tx, b, started, res)
	})
	return res, err
}

// mergeBatch is the replay path: COPY into a temporary table, then insert
// the rows whose id is new, each id once.
func (s *Sink) mergeBatch(ctx context.Context, b *sink.Batch, rows [][]any, started time.Time) (sink.Result, error) {
	var res sink.Result
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, createStage); err != nil {
			return fmt.Errorf("create %s: %w", stageTable, err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{stageTable}, eventColumns, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copy into %s: %w", stageTable, err)
		}
		tag, err := tx.Exec(ctx, mergeStage)
		if err != nil {
			return fmt.Errorf("merge into %s: %w", eventsTable, err)
		}
		inserted := int(tag.RowsAffected())
		res = sink.Result{Inserted: inserted, Duplicates: len(rows) - inserted}
		return insertBatch(ctx, tx, b, started, res)
	})
	return res, err
}

func insertBatch(ctx context.Context, tx pgx.Tx, b *sink.Batch, started time.Time, res sink.Result) error {
	first, last, err := batchSeqs(b)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, insertCommitted,
		b.ID, b.Sink, len(b.Events), res.Inserted, res.Duplicates, first, last,
		started, time.Since(started).Milliseconds(), sink.OutcomeCommitted)
	if err != nil {
		return fmt.Errorf("record batch in load_batches: %w", err)
	}
	return nil
}

// failureTimeout bounds recording a failed batch, which runs even when the
// caller's context is done.
const failureTimeout = 5 * time.Second

// recordFailure records b as failed, outside the failed transaction and
// best effort: the batch's error is what the caller needs, so a failure
// here is only logged.
func (s *Sink) recordFailure(ctx context.Context, b *sink.Batch, started time.Time, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), failureTimeout)
	defer cancel()
	first, last, err := batchSeqs(b)
	if err != nil {
		first, last = -1, -1
	}
	_, err = s.pool.Exec(ctx, insertFailed,
		b.ID, b.Sink, len(b.Events), first, last,
		started, time.Since(started).Milliseconds(), sink.OutcomeFailed, errorText(cause))
	if err != nil {
		s.log.WarnContext(ctx, "could not record failed batch",
			slog.String("batch", b.ID), slog.Any("error", err))
	}
}

// maxErrorText bounds the error text stored in load_batches.
const maxErrorText = 4000

func errorText(err error) string {
	s := err.Error()
	if len(s) > maxErrorText {
		s = s[:maxErrorText]
	}
	return s
}

const (
	eventsTable = "attendance_events"
	// stageTable is session-local and dropped at commit or rollback.
	stageTable = "attendance_events_stage"
)

// eventColumns are the columns a batch writes; loaded_at takes the
// transaction's time from its default.
var eventColumns = []string{
	"id", "rules_version", "site", "device_serial", "user_id", "person_id",
	"occurred_at", "device_time", "time_zone", "direction", "state", "verify_mode",
	"work_date", "flags",
	"raw_id", "raw_subject", "raw_stream", "raw_sequence", "clean_sequence",
	"run_id", "correlation_id", "batch_id",
}

var columnList = strings.Join(eventColumns, ", ")

// The stage table copies the columns, types, NOT NULLs and defaults but no
// CHECK, key or index, so that duplicate ids fit and a row the real table
// refuses is refused by the INSERT below, with the real constraint's name.
const createStage = `CREATE TEMP TABLE ` + stageTable + `
	(LIKE ` + eventsTable + ` INCLUDING DEFAULTS) ON COMMIT DROP`

// mergeStage keeps the first delivery (lowest CLEAN sequence) of an id that
// appears twice in the batch, and inserts in id order (see the note on
// sorting in write).
var mergeStage = `INSERT INTO ` + eventsTable + ` (` + columnList + `)
	SELECT DISTINCT ON (id) ` + columnList + `
	FROM ` + stageTable + `
	ORDER BY id, clean_sequence
	ON CONFLICT (id) DO NOTHING`

const insertCommitted = `INSERT INTO load_batches
	(batch_id, sink, row_count, inserted, duplicates, first_seq, last_seq,
	 started_at, duration_ms, outcome)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`

// insertFailed leaves an existing row alone: a batch id that already has a
// row (committed or failed) keeps it.
const insertFailed = `INSERT INTO load_batches
	(batch_id, sink, row_count, inserted, duplicates, first_seq, last_seq,
	 started_at, duration_ms, outcome, error)
	VALUES ($1, $2, $3, 0, 0, $4, $5, $6, $7, $8, $9)
	ON CONFLICT (batch_id) DO NOTHING`
