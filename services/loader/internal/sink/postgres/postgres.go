// Package postgres is the PostgreSQL sink: it loads micro-batches of clean
// attendance events and business records with COPY, one transaction per
// batch, idempotently, and keeps daily_attendance current in the same
// transaction.
//
// The fast path copies a batch straight into attendance_events and the
// records' tables (business_records, or records_<source> for a source with
// a typed table); a batch of records alone commits with its last COPY (see
// txn). Only when a COPY collides with a row already loaded (a
// replay or a redelivery) is the transaction rolled back and that table's
// rows merged instead: copied into a temporary table and inserted with
// ON CONFLICT (id) DO NOTHING, which also collapses an id that appears twice
// within the batch. The rare duplicate costs one retried transaction; new
// data never pays for it.
//
// The days to bring up to date are those of the events the transaction
// newly inserted: all of the batch's events on the fast path, the rows
// returned by INSERT ... RETURNING on the merge path; and, for the events
// the transformer marked reprocessed, the days of the punches' other
// versions (a replay may move a punch to another day; a day counts only a
// punch's latest version). The writers of a
// (site, work date) are serialized by a transaction-level advisory lock
// (taken in one global order, so writers never deadlock). On the fast path
// a day is extended from the newest state the sink knows (kept in memory:
// the state it committed last, or the state a batch of its own still in
// flight is writing; checked against the row's batch_id and revision, or
// else read from the row) when the new punches come after all of its
// punches, and summarized from the new punches alone when it has no row yet; any other day (a late punch, a
// replay under new rules, the merge path, a batch with reprocessed punches)
// is recomputed from every punch of the day in attendance_events. See
// summarize in daily.go.
package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/punchflow/punchflow/services/loader/internal/daily"
	"github.com/punchflow/punchflow/services/loader/internal/migrate"
	"github.com/punchflow/punchflow/services/loader/internal/recordtable"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// Sink writes batches to PostgreSQL through a pgx pool. It is safe for
// concurrent use, and several processes may write the same database; Close
// releases the pool.
type Sink struct {
	pool   *pgxpool.Pool
	log    *slog.Logger
	days   *daily.Calculator
	cache  *dayCache // the days this Sink committed last or has in flight
	tables recordtable.Set
	// commits numbers the transactions' COMMITs in the order they are
	// sent (see transact).
	commits atomic.Uint64
}

var _ sink.Sink = (*Sink)(nil)

// Option configures Open.
type Option func(*options)

type options struct {
	maxConns int32
	rules    daily.Rules
	tables   recordtable.Set
}

// WithMaxConns sets the pool's maximum number of connections. Without it the
// pool uses pool_max_conns from the URL, or pgxpool's default (the greater of
// 4 and the number of CPUs), which is plenty for a loader that writes a few
// batches at a time.
func WithMaxConns(n int32) Option {
	return func(o *options) { o.maxConns = n }
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

// applicationName is reported to the server (pg_stat_activity) unless the
// URL sets application_name itself.
const applicationName = "punchflow-loader"

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string, as pgx parses it), migrates its schema to the current
// version and returns a Sink. Migrations take an advisory lock, so replicas
// may call Open at the same time. The caller must Close the Sink. log may be
// nil.
func Open(ctx context.Context, url string, log *slog.Logger, opts ...Option) (*Sink, error) {
	o := options{rules: daily.DefaultRules()}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.rules.Validate(); err != nil {
		return nil, fmt.Errorf("open postgres sink: daily rules: %w", err)
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
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, createDayStageSQL); err != nil {
			return fmt.Errorf("create %s: %w", dayStage, err)
		}
		if _, err := conn.Exec(ctx, SettleMallocSQL); err != nil {
			return fmt.Errorf("settle the session's memory: %w", err)
		}
		return nil
	}

	// Migrations run on a connection of their own, closed afterwards, so
	// that the session-level migration lock can never outlive Open inside
	// a pooled connection.
	mdb := stdlib.OpenDB(*cfg.ConnConfig.Copy())
	err = migrate.Up(ctx, mdb, migrate.Postgres, log)
	if err == nil {
		err = migrate.RecordTables(ctx, mdb, migrate.Postgres, o.tables, log)
	}
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
	return &Sink{pool: pool, log: log, days: daily.New(o.rules), cache: newDayCache(dayCacheGeneration), tables: o.tables}, nil
}

// SettleMallocSQL, which every connection of a Sink runs first, makes the
// session's server process allocate and free 8
// MiB once. Every COPY of a batch allocates and frees a few MiB in the
// server (the multi-insert buffers of up to 1,000 rows); where the server
// uses glibc's malloc, whose thresholds start at 128 KiB, that memory may
// go back to the system at the end of each COPY and fault in again at the
// next (page faults, zeroing and TLB flushes), a fifth more server CPU per
// batch of records, depending on what the session allocated first.
// A block of 8 MiB freed raises the session's mmap threshold to 8 MiB and
// its trim threshold to 16 MiB (glibc's dynamic thresholds, mallopt(3)), so
// that the batches reuse their memory; each of the pool's server processes
// may keep up to 16 MiB of it. Elsewhere (thresholds pinned by MALLOC_*
// variables, another allocator) it is one cheap query.
// The benchmarks run it on their baselines' connections too, so that both
// sides of a comparison start from the same server state.
const SettleMallocSQL = `SELECT length(repeat('x', 8 << 20))`

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

// Write loads b as described by sink.Sink.
func (s *Sink) Write(ctx context.Context, b sink.Batch) (sink.Result, error) {
	return sink.Write(ctx, committer{s}, "postgres", s.log, b)
}

// committer is the PostgreSQL half of sink.Write.
type committer struct{ s *Sink }

func (c committer) Commit(ctx context.Context, b *sink.Batch, started time.Time) (sink.Result, string, error) {
	return c.s.write(ctx, b, started)
}

func (committer) RefusedData(err error) bool { return refusedData(err) }

func (c committer) RecordFailure(ctx context.Context, f sink.Failure) error {
	_, err := c.s.pool.Exec(ctx, insertFailed, f.BatchID, f.Sink, f.Rows, f.FirstSeq, f.LastSeq,
		f.Started, f.DurationMS, sink.OutcomeFailed, f.Error)
	return err
}

// plan names the tables the transaction merges into instead of copying.
type plan map[string]bool

func (p plan) String() string {
	if len(p) == 0 {
		return "copy"
	}
	return "merge " + strings.Join(slices.Sorted(maps.Keys(p)), ",")
}

// recordRows are the records of a batch for one table.
type recordRows struct {
	sink.RecordGroup
	rows rows
}

// write tries the COPY fast path and switches a table to the merge path
// when its COPY collides with rows already present. path says which plan
// decided.
func (s *Sink) write(ctx context.Context, b *sink.Batch, started time.Time) (_ sink.Result, path string, _ error) {
	// The events in one order for the COPY and for planning their days.
	order := sink.OrderEvents(b.Events)
	events, err := encodeEvents(b, order)
	if err != nil {
		return sink.Result{}, "encode", err
	}
	groups := sink.GroupRecords(b, s.tables)
	records := make([]recordRows, len(groups))
	for i, g := range groups {
		if records[i].rows, err = encodeRecords(b, g); err != nil {
			return sink.Result{}, "encode", err
		}
		records[i].RecordGroup = g
	}

	var copied []string // the tables the batch writes
	if events.Len() > 0 {
		copied = append(copied, eventsTable)
	}
	for _, r := range records {
		copied = append(copied, r.Name())
	}
	p := plan{}
	for {
		res, err := s.transact(ctx, b, order, events, records, p, started)
		if err == nil {
			return res, p.String(), nil
		}
		table := collides(err, copied)
		if table == "" || p[table] {
			return sink.Result{}, p.String(), err
		}
		p[table] = true
		s.log.DebugContext(ctx, "batch collides with loaded rows, merging",
			slog.String("batch", b.ID), slog.String("table", table))
	}
}

// transact runs one attempt of the batch's transaction under plan p.
func (s *Sink) transact(ctx context.Context, b *sink.Batch, order []int, events rows, records []recordRows, p plan, started time.Time) (sink.Result, error) {
	var (
		res       sink.Result
		dp        *dayPlan    // the days planned
		days      []cachedDay // the daily_attendance rows written
		commitSeq uint64
	)
	first, last, err := sink.BatchSeqs(b)
	if err != nil {
		return sink.Result{}, err
	}
	err = inTx(ctx, s.pool, func(tx *txn) error {
		res, days = sink.Result{}, nil
		if events.Len() > 0 {
			var n int
			// A reprocessed punch may have other versions, loaded on other
			// days or in this very batch: then every day of the batch and
			// of those versions is recomputed from the punches that count.
			rawIDs, ids := sink.Reprocessed(b)
			versions, err := otherVersions(ctx, tx, rawIDs, ids)
			if err != nil {
				return err
			}
			switch {
			case p[eventsTable]:
				var keys []daily.Key
				if n, keys, err = mergeEvents(ctx, tx, events); err == nil {
					dp = planRecompute(append(keys, versions...))
				}
			case len(rawIDs) > 0:
				if n, err = copyRows(ctx, tx, copyEventsSQL, eventsTable, events); err == nil {
					dp = planRecompute(append(sink.EventKeys(b), versions...))
				}
			default:
				// The days are planned while the server copies the
				// punches: the plan needs only the batch and the cache.
				planned := make(chan error, 1)
				go func() {
					var err error
					dp, err = s.planFresh(b, order)
					planned <- err
				}()
				n, err = copyRows(ctx, tx, copyEventsSQL, eventsTable, events)
				if perr := <-planned; err == nil {
					err = perr
				}
			}
			if err != nil {
				return err
			}
			res.Inserted += n
			res.Duplicates += events.Len() - n
			if days, err = s.summarize(ctx, tx, b.ID, dp); err != nil {
				return err
			}
			res.Days = len(days)
		}
		// A batch of records on the fast path commits with its last COPY:
		// every COPY inserts all its rows or fails, so its status row is
		// known beforehand.
		oneTrip := events.Len() == 0 && len(p) == 0
		for i, r := range records {
			var (
				n   int
				err error
			)
			switch {
			case p[r.Name()]:
				n, err = mergeRecords(ctx, tx, r)
			case oneTrip && i == len(records)-1:
				var copied int64
				finish := committedRowSQL(b, started, first, last)
				if copied, err = tx.copyRowsAndCommit(ctx, copyStatement(r.Name(), r.Columns()), r.rows, finish); err != nil {
					err = fmt.Errorf("copy into %s: %w", r.Name(), err)
				}
				n = int(copied)
			default:
				n, err = copyRows(ctx, tx, copyStatement(r.Name(), r.Columns()), r.Name(), r.rows)
			}
			if err != nil {
				return err
			}
			res.Inserted += n
			res.Duplicates += r.rows.Len() - n
		}
		return nil
	}, insertCommitted, func() []any {
		// The batch's row goes with the COMMIT, once the result is known.
		// The commit's place among this Sink's commits is taken as it is
		// sent: a later writer of the same day sends its COMMIT only after
		// this one ended (it waits for the day's lock).
		commitSeq = s.commits.Add(1)
		return []any{b.ID, b.Sink, b.Len(), res.Inserted, res.Duplicates, first, last,
			started, time.Since(started).Milliseconds(), sink.OutcomeCommitted}
	})
	if err == nil {
		s.cache.commit(dp, days, commitSeq)
	} else {
		s.cache.abort(dp)
	}
	return res, err
}

// copyRows is the fast path: COPY every row into table. It fails, with a
// unique violation that collides recognises, when an id is already there.
func copyRows(ctx context.Context, tx *txn, statement, table string, rows rows) (int, error) {
	n, err := tx.copyRows(ctx, statement, rows)
	if err != nil {
		return 0, fmt.Errorf("copy into %s: %w", table, err)
	}
	return int(n), nil
}

// mergeEvents is the replay path for events: COPY into a temporary table,
// then insert the rows whose id is new, each id once, and return how many
// and the days they belong to.
func mergeEvents(ctx context.Context, tx *txn, rows rows) (int, []daily.Key, error) {
	if err := stage(ctx, tx, eventsTable, eventsStage, copyEventsStageSQL, rows); err != nil {
		return 0, nil, err
	}
	rs, err := tx.Query(ctx, mergeEventsSQL)
	if err != nil {
		return 0, nil, fmt.Errorf("merge into %s: %w", eventsTable, err)
	}
	keys, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (daily.Key, error) {
		var k daily.Key
		err := r.Scan(&k.Site, &k.UserID, &k.WorkDate)
		return k, err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("merge into %s: %w", eventsTable, err)
	}
	return len(keys), keys, nil
}

// mergeRecords is the replay path for the records of one table.
func mergeRecords(ctx context.Context, tx *txn, r recordRows) (int, error) {
	table, stageTable := r.Name(), r.Name()+"_stage"
	if err := stage(ctx, tx, table, stageTable, copyStatement(stageTable, r.Columns()), r.rows); err != nil {
		return 0, err
	}
	columns := sink.ColumnList(r.Columns(), `"`)
	// Each id once, and in the order of the COPY path (sink.OrderRecords),
	// so that a merge and a COPY of the same ids wait for each other
	// rather than deadlock.
	tag, err := tx.Exec(ctx, `INSERT INTO `+table+` (`+columns+`)
	SELECT `+columns+` FROM (SELECT DISTINCT ON (id) * FROM `+stageTable+` ORDER BY id, clean_sequence) AS s
	ORDER BY natural_key, id
	ON CONFLICT (id) DO NOTHING`)
	if err != nil {
		return 0, fmt.Errorf("merge into %s: %w", table, err)
	}
	return int(tag.RowsAffected()), nil
}

// stage copies rows into a temporary copy of table, dropped at commit. The
// copy has the columns, types, NOT NULLs and defaults but no CHECK, key or
// index, so that duplicate ids fit and a row the real table refuses is
// refused by the INSERT that follows, with the real constraint's name.
func stage(ctx context.Context, tx *txn, table, stageTable, statement string, rows rows) error {
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE `+stageTable+` (LIKE `+table+` INCLUDING DEFAULTS) ON COMMIT DROP`); err != nil {
		return fmt.Errorf("create %s: %w", stageTable, err)
	}
	if _, err := tx.copyRows(ctx, statement, rows); err != nil {
		return fmt.Errorf("copy into %s: %w", stageTable, err)
	}
	return nil
}

const (
	eventsTable = "attendance_events"
	daysTable   = "daily_attendance"
	// The stage table of events is session-local and dropped at commit or
	// rollback; the stage table of a records table is that table's name
	// and _stage.
	eventsStage = "attendance_events_stage"
)

// The COPY statements of the rows encodeEvents makes.
var (
	copyEventsSQL      = copyStatement(eventsTable, eventColumns)
	copyEventsStageSQL = copyStatement(eventsStage, eventColumns)
)

// mergeEventsSQL keeps the first delivery (lowest CLEAN sequence) of an id
// that appears twice in the batch, inserts in the order of the COPY path
// (sink.OrderEvents: a merge and a COPY of the same ids wait for each
// other rather than deadlock), and returns the day of every row it
// inserted.
var mergeEventsSQL = `INSERT INTO ` + eventsTable + ` (` + eventColumnList + `)
	SELECT ` + eventColumnList + ` FROM (SELECT DISTINCT ON (id) * FROM ` + eventsStage + ` ORDER BY id, clean_sequence) AS s
	ORDER BY work_date, site, user_id, id
	ON CONFLICT (id) DO NOTHING
	RETURNING site, user_id, to_char(work_date, 'YYYY-MM-DD')`

// committedRowSQL is insertCommitted with its values written out, for a
// batch of records that commits with its COPY (a simple query takes no
// parameters): every row inserted; the duration measured by the server,
// from started to the insert.
func committedRowSQL(b *sink.Batch, started time.Time, first, last int64) string {
	// Microseconds, truncated as pgx sends an instant (the server would
	// round nanoseconds).
	at := quoteLiteral(started.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)) + "::timestamptz"
	return fmt.Sprintf(`INSERT INTO load_batches
	(batch_id, sink, row_count, inserted, duplicates, first_seq, last_seq,
	 started_at, duration_ms, outcome)
	VALUES (%s, %s, %d, %d, 0, %d, %d, %s, greatest(0, extract(epoch FROM clock_timestamp() - %s) * 1000)::bigint, %s)`,
		quoteLiteral(b.ID), quoteLiteral(b.Sink), b.Len(), b.Len(), first, last, at, at, quoteLiteral(sink.OutcomeCommitted))
}

// quoteLiteral quotes s as an SQL escape string literal (E'...'), which
// reads the same whatever standard_conforming_strings says.
func quoteLiteral(s string) string {
	return "E'" + strings.NewReplacer(`\`, `\\`, "'", "''").Replace(s) + "'"
}

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
