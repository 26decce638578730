// Package sqlsource reads rows of a MySQL/MariaDB or PostgreSQL table (the
// department databases the old sync scripts copied) incrementally by a
// cursor column: one time window at a time, in pages ordered by the cursor
// and the key columns (keyset pagination, so a page boundary between rows
// with the same cursor value loses nothing). Each row becomes a
// proto.RawRecord whose payload is the row as a JSON object keyed by column
// name. A Source implements extract.Source: the live loop reads from its
// KV cursor with a look-back, and backfills read explicit date ranges.
package sqlsource

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/extract"
)

// Drivers.
const (
	Postgres = "postgres"
	MySQL    = "mysql"
)

// Config declares one table source; it is read from the "sql" list of the
// collector's sources file (YAML keys in the tags).
type Config struct {
	// Name identifies the source in subjects (raw.record.<name>), cursors,
	// backfill windows and heartbeats.
	Name string `yaml:"name"`
	// Driver is postgres or mysql (MySQL and MariaDB).
	Driver string `yaml:"driver"`
	// DSN is the connection string: a postgres:// URL, or a MySQL DSN such
	// as user:pass@tcp(host:3306)/db. Prefer DSNEnv or DSNFile: it holds a
	// password.
	DSN     string `yaml:"dsn"`
	DSNEnv  string `yaml:"dsn_env"`
	DSNFile string `yaml:"dsn_file"`
	// Table is the table (or view), optionally schema-qualified
	// ("hr.leave_requests").
	Table string `yaml:"table"`
	// Columns are the columns read (default: all, in table order). They
	// must include the key and cursor columns.
	Columns []string `yaml:"columns"`
	// KeyColumns identify a row (its natural key, joined with "|"); they
	// also order rows with the same cursor value. Required.
	KeyColumns []string `yaml:"key_columns"`
	// CursorColumn is the timestamp column rows are extracted by (e.g.
	// updated_at): a window reads the rows with From ≤ cursor < To. A
	// column without a zone (timestamp, DATETIME) is read as UTC.
	CursorColumn string `yaml:"cursor_column"`
	// Where is an optional extra condition in the database's own SQL (e.g.
	// "deleted = false"). It is configuration, trusted like the DSN.
	Where string `yaml:"where"`
	// PageSize is the number of rows read per query (default 1,000).
	PageSize int `yaml:"page_size"`
	// QueryTimeout bounds one page's query (default 1 min).
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// MaxOpenConns bounds the source's connections (default 4).
	MaxOpenConns int `yaml:"max_open_conns"`
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// Validate reports every problem of the declaration, each naming the
// source and the key to fix.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("sql source %q: "+format, append([]any{c.Name}, args...)...))
	}
	if c.Name == "" {
		bad("name is required")
	}
	if c.Driver != Postgres && c.Driver != MySQL {
		bad("driver %q: use postgres or mysql (also for MariaDB)", c.Driver)
	}
	if c.DSN == "" && c.DSNEnv == "" && c.DSNFile == "" {
		bad("dsn_env, dsn_file or dsn is required")
	}
	checkIdent := func(key, v string, qualified bool) {
		parts := []string{v}
		if qualified {
			parts = strings.Split(v, ".")
		}
		for _, p := range parts {
			if !identRE.MatchString(p) {
				bad("%s %q is not a plain identifier (letters, digits, _; a schema-qualified table as schema.table)", key, v)
				return
			}
		}
	}
	if c.Table == "" {
		bad("table is required")
	} else {
		checkIdent("table", c.Table, true)
	}
	if len(c.KeyColumns) == 0 {
		bad("key_columns is required: the column (or columns) that identify a row, e.g. [id]")
	}
	for _, k := range c.KeyColumns {
		checkIdent("key_columns", k, false)
	}
	if c.CursorColumn == "" {
		bad("cursor_column is required: the timestamp column rows are extracted by, e.g. updated_at")
	} else {
		checkIdent("cursor_column", c.CursorColumn, false)
	}
	for _, col := range c.Columns {
		checkIdent("columns", col, false)
	}
	if len(c.Columns) > 0 {
		for _, need := range append([]string{c.CursorColumn}, c.KeyColumns...) {
			if need != "" && !containsFold(c.Columns, need) {
				bad("columns must include %s (a key or the cursor column)", need)
			}
		}
	}
	if c.PageSize < 0 {
		bad("page_size %d must be positive", c.PageSize)
	}
	return errors.Join(errs...)
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// Source reads one table. It is safe for concurrent use (database/sql pools
// the connections); Close releases them.
type Source struct {
	cfg     Config
	db      *sql.DB
	dialect dialect
	addr    string
	log     *slog.Logger
	// first and next are the page queries without and with the keyset
	// condition.
	first, next string
}

// Open validates cfg, resolves its DSN through getenv (or a file), and
// connects. MySQL connections are made with parseTime=true and loc=UTC, so
// that DATETIME and TIMESTAMP values come back as times.
func Open(ctx context.Context, cfg Config, getenv func(string) string, log *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = 1000
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = time.Minute
	}
	if cfg.MaxOpenConns <= 0 {
		cfg.MaxOpenConns = 4
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dsn, err := resolveDSN(cfg, getenv)
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, log: log.With("source", cfg.Name)}
	driver := "pgx"
	switch cfg.Driver {
	case Postgres:
		s.dialect = postgresDialect{}
		s.addr = postgresAddr(dsn) + "/" + cfg.Table
	case MySQL:
		mc, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("sql source %q: dsn is not a MySQL DSN (user:pass@tcp(host:3306)/db): %w", cfg.Name, err)
		}
		mc.ParseTime, mc.Loc = true, time.UTC
		dsn = mc.FormatDSN()
		driver = "mysql"
		s.dialect = mysqlDialect{}
		s.addr = mc.Addr + "/" + mc.DBName + "/" + cfg.Table
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("sql source %q: %w", cfg.Name, err)
	}
	db.SetMaxOpenConns(cfg.MaxOpenConns)
	db.SetMaxIdleConns(cfg.MaxOpenConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sql source %q: connect to %s: %w", cfg.Name, s.addr, err)
	}
	s.db = db
	s.first, s.next = s.queries()
	return s, nil
}

func resolveDSN(cfg Config, getenv func(string) string) (string, error) {
	switch {
	case cfg.DSNFile != "":
		b, err := readSecretFile(cfg.DSNFile)
		if err != nil {
			return "", fmt.Errorf("sql source %q: dsn_file: %w", cfg.Name, err)
		}
		return b, nil
	case cfg.DSNEnv != "":
		if getenv == nil || getenv(cfg.DSNEnv) == "" {
			return "", fmt.Errorf("sql source %q: environment variable %s (dsn_env) is not set", cfg.Name, cfg.DSNEnv)
		}
		return getenv(cfg.DSNEnv), nil
	}
	return cfg.DSN, nil
}

// Close closes the connection pool.
func (s *Source) Close() error { return s.db.Close() }

// Name is the source's name.
func (s *Source) Name() string { return s.cfg.Name }

// Kind is "sql".
func (s *Source) Kind() string { return "sql" }

// Address is the database host, database and table, without credentials.
func (s *Source) Address() string { return s.addr }

// queries builds the two page queries. The keyset condition compares the
// row (cursor, keys...) with the last row of the previous page; both
// databases support row-value comparison.
func (s *Source) queries() (first, next string) {
	d := s.dialect
	cols := "*"
	if len(s.cfg.Columns) > 0 {
		q := make([]string, len(s.cfg.Columns))
		for i, c := range s.cfg.Columns {
			q[i] = d.quote(c)
		}
		cols = strings.Join(q, ", ")
	}
	order := []string{d.quote(s.cfg.CursorColumn)}
	for _, k := range s.cfg.KeyColumns {
		order = append(order, d.quote(k))
	}
	where := fmt.Sprintf("%s >= %s AND %s < %s", order[0], d.param(1), order[0], d.param(2))
	if s.cfg.Where != "" {
		where += " AND (" + s.cfg.Where + ")"
	}
	base := fmt.Sprintf("SELECT %s FROM %s WHERE %s", cols, d.quoteTable(s.cfg.Table), where)
	tail := fmt.Sprintf(" ORDER BY %s LIMIT %d", strings.Join(order, ", "), s.cfg.PageSize)
	params := make([]string, len(order))
	for i := range order {
		params[i] = d.param(3 + i)
	}
	keyset := fmt.Sprintf(" AND (%s) > (%s)", strings.Join(order, ", "), strings.Join(params, ", "))
	return base + tail, base + keyset + tail
}

// Extract reads the rows of w page by page and sends each to sink. A row
// whose key is NULL is dead-lettered with the row as JSON.
func (s *Source) Extract(ctx context.Context, w extract.Window, sink extract.Sink) error {
	args := []any{w.From.UTC(), w.To.UTC()}
	query := s.first
	for page := 1; ; page++ {
		rows, last, err := s.page(ctx, query, args, w, page)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.reject != "" {
				if err := sink.Reject(ctx, extract.Reject{Body: r.payload, Reason: r.reject, Where: s.addr}); err != nil {
					return err
				}
				continue
			}
			rec := proto.RawRecord{NaturalKey: r.key, Payload: r.payload}
			if !r.at.IsZero() {
				at := r.at
				rec.ObservedAt = &at
			}
			if err := sink.Record(ctx, rec); err != nil {
				return err
			}
		}
		if len(rows) < s.cfg.PageSize {
			return nil
		}
		query = s.next
		args = append(args[:2], last...)
	}
}

type row struct {
	key     string
	at      time.Time
	payload []byte
	reject  string
}

// page runs one page query and returns its rows and the keyset values of
// the last one (cursor, keys...).
func (s *Source) page(ctx context.Context, query string, args []any, w extract.Window, page int) ([]row, []any, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	fail := func(err error) ([]row, []any, error) {
		return nil, nil, fmt.Errorf("sql source %q window %s page %d: %w", s.cfg.Name, w, page, err)
	}
	rs, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fail(err)
	}
	defer rs.Close()
	cols, err := rs.ColumnTypes()
	if err != nil {
		return fail(err)
	}
	enc, err := newRowEncoder(cols, s.cfg.CursorColumn, s.cfg.KeyColumns)
	if err != nil {
		return fail(err)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []row
	var last []any
	for rs.Next() {
		if err := rs.Scan(ptrs...); err != nil {
			return fail(err)
		}
		r, keyset := enc.encode(vals)
		out = append(out, r)
		last = keyset
	}
	if err := rs.Err(); err != nil {
		return fail(err)
	}
	return out, last, nil
}
