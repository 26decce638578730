// Package mysql is the MySQL and MariaDB sink (go-sql-driver/mysql): one
// transaction per batch, idempotent through the primary key on id, and
// daily_attendance kept current in the same transaction.
//
// Rows go in with LOAD DATA LOCAL INFILE from a registered reader (the
// default: on MariaDB 10.11 it measured about 30% faster than multi-row
// INSERTs for business records and 45% for attendance batches, see
// BenchmarkMySQLMethods), or with multi-row INSERT ... ON DUPLICATE KEY
// UPDATE id = id when the server does not allow local infiles
// (local_infile = OFF, MySQL 8's default) or when WithMethod asks for it.
//
// LOAD DATA LOCAL skips a row whose id is present (IGNORE) and, being
// LOCAL, turns every other row error into a warning as well (skipping the
// row, or storing an adjusted value). So after a load that left warnings
// the sink reads them (the session keeps up to 65535): any warning other
// than a duplicate key (a value too long, a CHECK that failed) is the
// server refusing the data, and the transaction is rolled back with a
// permanent error quoting it, so that splitting the batch isolates the row.
// The INSERT method keeps errors as errors.
//
// The days to recompute are those of the events newly inserted: all of the
// batch's when the load inserted every row, otherwise the rows of the batch
// whose batch_id is this batch's (ids are unique per attempt, and a
// duplicate keeps the batch id of the load that inserted it); and the days
// of the loaded other versions of the punches marked reprocessed, looked up
// first with a locking read (see otherVersions). Each day is recomputed
// from every punch of it that counts, read with a locking read at
// REPEATABLE READ (see recompute), and upserted.
//
// Sessions run with time_zone '+00:00' and instants are written as UTC, so
// DATETIME columns hold UTC and their defaults are UTC too; sql_mode gets
// STRICT_ALL_TABLES added.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/daily"
	"github.com/punchflow/punchflow/services/loader/internal/migrate"
	"github.com/punchflow/punchflow/services/loader/internal/recordtable"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// Method is how rows reach the tables.
type Method string

// Methods.
const (
	// LoadData streams a batch as tab-separated text through LOAD DATA
	// LOCAL INFILE with a registered reader.
	LoadData Method = "load-data"
	// Insert sends multi-row INSERT statements with the values inlined by
	// the driver (interpolateParams).
	Insert Method = "insert"
)

// Sink writes batches to MySQL or MariaDB. It is safe for concurrent use,
// and several processes may write the same database; Close releases the
// pool.
type Sink struct {
	db      *sql.DB
	log     *slog.Logger
	days    *daily.Calculator
	method  Method
	readers atomic.Uint64 // names registered reader handlers
	prefix  string
	tables  recordtable.Set
	// isolation is what BeginTx asks for: REPEATABLE READ, or the default
	// when that is the sessions' default already (saving a statement per
	// batch).
	isolation sql.IsolationLevel
}

var _ sink.Sink = (*Sink)(nil)

// Option configures Open.
type Option func(*options)

type options struct {
	rules    daily.Rules
	method   Method
	maxConns int
	tables   recordtable.Set
}

// WithDailyRules sets the rules of the daily attendance summary; the default
// is daily.DefaultRules.
func WithDailyRules(r daily.Rules) Option {
	return func(o *options) { o.rules = r }
}

// WithMethod chooses how rows are sent. The default is LoadData, falling
// back to Insert when the server refuses local infiles; an explicit
// LoadData fails Open instead.
func WithMethod(m Method) Option {
	return func(o *options) { o.method = m }
}

// WithRecordTables loads the records of the sources of set into their
// typed tables (see package recordtable), which Open creates or extends;
// records of other sources go to business_records.
func WithRecordTables(set recordtable.Set) Option {
	return func(o *options) { o.tables = set }
}

// WithMaxConns bounds the pool (default 4).
func WithMaxConns(n int) Option {
	return func(o *options) { o.maxConns = n }
}

// Open connects to the database named by dsn (a go-sql-driver/mysql DSN,
// user:password@tcp(host:3306)/dbname), migrates its schema to the current
// version and returns a Sink. The sink overrides the DSN's parseTime, loc,
// time_zone and interpolateParams. Migrations take a named lock, so
// replicas may call Open at the same time. The caller must Close the Sink.
// log may be nil.
func Open(ctx context.Context, dsn string, log *slog.Logger, opts ...Option) (*Sink, error) {
	o := options{rules: daily.DefaultRules(), maxConns: 4}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.rules.Validate(); err != nil {
		return nil, fmt.Errorf("open mysql sink: daily rules: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("open mysql sink: %w", err)
	}
	if cfg.DBName == "" {
		return nil, fmt.Errorf("open mysql sink: the DSN names no database (user@tcp(host:3306)/dbname)")
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.InterpolateParams = true
	cfg.MaxAllowedPacket = 0 // ask the server
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	cfg.Params["sql_mode"] = "CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')"
	cfg.Params["max_error_count"] = fmt.Sprint(maxErrorCount)
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("open mysql sink: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(o.maxConns)
	db.SetMaxIdleConns(o.maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	where := fmt.Sprintf("%s/%s", cfg.Addr, cfg.DBName)
	err = migrate.Up(ctx, db, migrate.MySQL, log)
	if err == nil {
		err = migrate.RecordTables(ctx, db, migrate.MySQL, o.tables, log)
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open mysql sink at %s: %w", where, err)
	}
	method := o.method
	if method == "" || method == LoadData {
		var on int
		if err := db.QueryRowContext(ctx, "SELECT @@local_infile").Scan(&on); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open mysql sink at %s: %w", where, err)
		}
		switch {
		case on == 1:
			method = LoadData
		case o.method == LoadData:
			_ = db.Close()
			return nil, fmt.Errorf("open mysql sink at %s: the server refuses LOAD DATA LOCAL INFILE; set local_infile=ON on the server or use the insert method", where)
		default:
			log.WarnContext(ctx, "server refuses LOAD DATA LOCAL INFILE (local_infile=OFF), loading with multi-row INSERTs", slog.String("db", where))
			method = Insert
		}
	}
	if method != LoadData && method != Insert {
		_ = db.Close()
		return nil, fmt.Errorf("open mysql sink: unknown method %q (want %s or %s)", method, LoadData, Insert)
	}
	isolation, err := transactionIsolation(ctx, db)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open mysql sink at %s: %w", where, err)
	}
	return &Sink{db: db, log: log, days: daily.New(o.rules), method: method, prefix: "punchflow-" + proto.NewCorrelationID()[:8],
		tables: o.tables, isolation: isolation}, nil
}

// transactionIsolation returns the level BeginTx should ask for so that
// transactions run at REPEATABLE READ: the default level when the server's
// sessions start with it (MySQL's and MariaDB's default), which sends no
// SET TRANSACTION before every batch.
func transactionIsolation(ctx context.Context, db *sql.DB) (sql.IsolationLevel, error) {
	var level string
	// MySQL 8 names the variable transaction_isolation, MariaDB (before
	// 11.1) tx_isolation.
	err := db.QueryRowContext(ctx, "SELECT @@SESSION.transaction_isolation").Scan(&level)
	if err != nil {
		if err = db.QueryRowContext(ctx, "SELECT @@SESSION.tx_isolation").Scan(&level); err != nil {
			return 0, fmt.Errorf("read the transaction isolation level: %w", err)
		}
	}
	if level == "REPEATABLE-READ" {
		return sql.LevelDefault, nil
	}
	return sql.LevelRepeatableRead, nil
}

// Method reports how the sink sends rows.
func (s *Sink) Method() Method { return s.method }

// Ping reports whether the database answers, for readiness.
func (s *Sink) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping mysql: %w", err)
	}
	return nil
}

// Close closes the pool; Write and Ping fail (transiently) after it. Close
// may be called more than once.
func (s *Sink) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close mysql: %w", err)
	}
	return nil
}

// Write loads b as described by sink.Sink. An id that appears twice in b is
// inserted once, from its first occurrence.
func (s *Sink) Write(ctx context.Context, b sink.Batch) (sink.Result, error) {
	return sink.Write(ctx, committer{s}, "mysql", s.log, b)
}

// committer is the MySQL half of sink.Write.
type committer struct{ s *Sink }

func (c committer) Commit(ctx context.Context, b *sink.Batch, started time.Time) (sink.Result, string, error) {
	res, err := c.s.write(ctx, b, started)
	return res, string(c.s.method), err
}

func (committer) RefusedData(err error) bool { return refusedData(err) }

func (c committer) RecordFailure(ctx context.Context, f sink.Failure) error {
	_, err := c.s.db.ExecContext(ctx, insertFailed, f.BatchID, f.Sink, f.Rows, f.FirstSeq, f.LastSeq,
		f.Started.UTC(), f.DurationMS, sink.OutcomeFailed, f.Error)
	return err
}

func (s *Sink) write(ctx context.Context, b *sink.Batch, started time.Time) (_ sink.Result, err error) {
	events, err := encodeEvents(b)
	if err != nil {
		return sink.Result{}, err
	}
	groups := sink.GroupRecords(b, s.tables)
	first, last, err := sink.BatchSeqs(b)
	if err != nil {
		return sink.Result{}, err
	}

	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: s.isolation})
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
		versions, err := otherVersions(ctx, tx, b)
		if err != nil {
			return sink.Result{}, err
		}
		n, err := s.load(ctx, tx, eventsTable, eventColumns, rowsOf(events, sink.OrderEvents(b.Events)))
		if err != nil {
			return sink.Result{}, err
		}
		res.Inserted += n
		res.Duplicates += len(events) - n
		keys := sink.EventKeys(b)
		if n < len(events) {
			if keys, err = insertedKeys(ctx, tx, b); err != nil {
				return sink.Result{}, err
			}
		}
		if res.Days, err = s.recompute(ctx, tx, b.ID, append(keys, versions...)); err != nil {
			return sink.Result{}, err
		}
	}
	for _, g := range groups {
		n, err := s.load(ctx, tx, g.Name(), g.Columns(), recordRows(b, g))
		if err != nil {
			return sink.Result{}, err
		}
		res.Inserted += n
		res.Duplicates += len(g.Records) - n
	}
	if _, err := tx.ExecContext(ctx, insertCommitted,
		b.ID, b.Sink, b.Len(), res.Inserted, res.Duplicates, first, last,
		started.UTC(), time.Since(started).Milliseconds(), sink.OutcomeCommitted); err != nil {
		return sink.Result{}, fmt.Errorf("record batch in load_batches: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return sink.Result{}, fmt.Errorf("commit: %w", err)
	}
	return res, nil
}

// load inserts rows into table, skipping ids already present, and returns
// how many it inserted.
func (s *Sink) load(ctx context.Context, tx *sql.Tx, table string, columns []string, src rows) (int, error) {
	if s.method == Insert {
		all, err := src.all()
		if err != nil {
			return 0, err
		}
		return insertRows(ctx, tx, table, columns, all)
	}
	return s.loadData(ctx, tx, table, columns, src)
}

// insertedKeys returns the days of the events of b that this transaction
// inserted: the rows carrying b's id among b's event ids.
func insertedKeys(ctx context.Context, tx *sql.Tx, b *sink.Batch) ([]daily.Key, error) {
	var keys []daily.Key
	for start := 0; start < len(b.Events); start += keyChunk {
		chunk := b.Events[start:min(start+keyChunk, len(b.Events))]
		args := make([]any, 0, len(chunk)+1)
		args = append(args, b.ID)
		for i := range chunk {
			args = append(args, chunk[i].ID)
		}
		rs, err := tx.QueryContext(ctx, `SELECT site, user_id, DATE_FORMAT(work_date, '%Y-%m-%d')
			FROM attendance_events WHERE batch_id = ? AND id IN (`+placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("read the events batch %s inserted: %w", b.ID, err)
		}
		for rs.Next() {
			var k daily.Key
			if err := rs.Scan(&k.Site, &k.UserID, &k.WorkDate); err != nil {
				rs.Close()
				return nil, fmt.Errorf("read the events batch %s inserted: %w", b.ID, err)
			}
			keys = append(keys, k)
		}
		if err := errors.Join(rs.Err(), rs.Close()); err != nil {
			return nil, fmt.Errorf("read the events batch %s inserted: %w", b.ID, err)
		}
	}
	return keys, nil
}

// otherVersions returns the days of the loaded versions of the punches
// of b marked reprocessed, other than b's own (sink.OtherVersionDays), and
// locks those rows, and the index gaps where new versions go, until the
// transaction ends. It runs before anything else in the transaction: a
// locking read waits for a concurrent batch holding another version of one
// of the punches and then sees it; and the transaction's snapshot, taken
// by its first plain read, comes after. (Two batches that both bring a
// punch's first loaded versions may deadlock on the gap instead; the loser
// is retried.) The batch's own versions need no lookup: their days are
// those of the rows it inserts.
func otherVersions(ctx context.Context, tx *sql.Tx, b *sink.Batch) ([]daily.Key, error) {
	return sink.OtherVersionDays(ctx, tx, b, keyChunk, func(n int) string {
		return `SELECT site, user_id, DATE_FORMAT(work_date, '%Y-%m-%d') FROM attendance_events
			WHERE raw_id IN (` + placeholders(n) + `) AND id NOT IN (` + placeholders(n) + `) FOR UPDATE`
	})
}

// keyChunk bounds the ids or days one statement names.
const keyChunk = 500

func placeholders(n int) string {
	if n == 0 {
		return ""
	}
	b := make([]byte, 0, 3*n)
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '?')
	}
	return string(b)
}

const eventsTable = "attendance_events"

const insertCommitted = `INSERT INTO load_batches
	(batch_id, sink, row_count, inserted, duplicates, first_seq, last_seq,
	 started_at, duration_ms, outcome)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// insertFailed leaves an existing row alone: a batch id that already has a
// row (committed or failed) keeps it.
const insertFailed = `INSERT IGNORE INTO load_batches
	(batch_id, sink, row_count, inserted, duplicates, first_seq, last_seq,
	 started_at, duration_ms, outcome, error)
	VALUES (?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?)`
