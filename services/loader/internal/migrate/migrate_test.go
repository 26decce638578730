package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	_ "github.com/go-sql-driver/mysql" // "mysql" driver
	"github.com/google/go-cmp/cmp"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver
	_ "modernc.org/sqlite"             // "sqlite" driver

	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/services/loader/internal/recordtable"
)

// column is one column of the schema as a database describes it.
type column struct {
	Table, Name, Type string
	Nullable          bool
}

// schema is what a migrated database must hold.
type schema struct {
	Columns []column
	Indexes []string // secondary indexes, sorted
	Checks  []string // CHECK constraints by name, sorted (SQLite's are unnamed)
}

// logical lists the columns of the logical schema with their type in each
// dialect: the one place that shows the dialects side by side.
var logical = []struct {
	table, name             string
	postgres, sqlite, mysql string
	nullable                bool
}{
	{"attendance_events", "id", "character varying(64)", "TEXT", "varchar(64)", false},
	{"attendance_events", "rules_version", "text", "TEXT", "varchar(128)", false},
	{"attendance_events", "site", "text", "TEXT", "varchar(128)", false},
	{"attendance_events", "device_serial", "text", "TEXT", "varchar(128)", false},
	{"attendance_events", "user_id", "text", "TEXT", "varchar(128)", false},
	{"attendance_events", "person_id", "text", "TEXT", "varchar(128)", true},
	{"attendance_events", "occurred_at", "timestamp with time zone", "TEXT", "datetime(6)", false},
	{"attendance_events", "device_time", "text", "TEXT", "varchar(32)", false},
	{"attendance_events", "time_zone", "text", "TEXT", "varchar(64)", false},
	{"attendance_events", "direction", "text", "TEXT", "varchar(16)", false},
	{"attendance_events", "state", "integer", "INTEGER", "int(11)", false},
	{"attendance_events", "verify_mode", "integer", "INTEGER", "int(11)", false},
	{"attendance_events", "work_date", "date", "TEXT", "date", false},
	{"attendance_events", "flags", "text", "TEXT", "varchar(1024)", false},
	{"attendance_events", "raw_id", "text", "TEXT", "varchar(128)", false},
	{"attendance_events", "raw_subject", "text", "TEXT", "varchar(255)", false},
	{"attendance_events", "raw_stream", "text", "TEXT", "varchar(128)", false},
	{"attendance_events", "raw_sequence", "bigint", "INTEGER", "bigint(20)", false},
	{"attendance_events", "clean_sequence", "bigint", "INTEGER", "bigint(20)", false},
	{"attendance_events", "run_id", "text", "TEXT", "varchar(128)", false},
	{"attendance_events", "correlation_id", "text", "TEXT", "varchar(128)", false},
	{"attendance_events", "batch_id", "text", "TEXT", "varchar(128)", false},
	{"attendance_events", "loaded_at", "timestamp with time zone", "TEXT", "datetime(6)", false},
	{"attendance_events", "department", "text", "TEXT", "varchar(128)", false},
	{"attendance_events", "roster_version", "text", "TEXT", "varchar(128)", false},
	{"attendance_events", "shift", "text", "TEXT", "varchar(128)", false},
	{"attendance_events", "shift_start", "timestamp with time zone", "TEXT", "datetime(6)", true},
	{"attendance_events", "shift_end", "timestamp with time zone", "TEXT", "datetime(6)", true},
	{"attendance_events", "rounded_at", "timestamp with time zone", "TEXT", "datetime(6)", true},
	{"attendance_events", "late_minutes", "integer", "INTEGER", "int(11)", false},
	{"attendance_events", "early_leave_minutes", "integer", "INTEGER", "int(11)", false},
	{"attendance_events", "overtime_minutes", "integer", "INTEGER", "int(11)", false},
	{"attendance_events", "clock_offset_ms", "bigint", "INTEGER", "bigint(20)", false},
	{"load_batches", "batch_id", "text", "TEXT", "varchar(128)", false},
	{"load_batches", "sink", "text", "TEXT", "varchar(128)", false},
	{"load_batches", "row_count", "integer", "INTEGER", "int(11)", false},
	{"load_batches", "inserted", "integer", "INTEGER", "int(11)", false},
	{"load_batches", "duplicates", "integer", "INTEGER", "int(11)", false},
	{"load_batches", "first_seq", "bigint", "INTEGER", "bigint(20)", false},
	{"load_batches", "last_seq", "bigint", "INTEGER", "bigint(20)", false},
	{"load_batches", "started_at", "timestamp with time zone", "TEXT", "datetime(6)", false},
	{"load_batches", "duration_ms", "bigint", "INTEGER", "bigint(20)", false},
	{"load_batches", "outcome", "text", "TEXT", "varchar(16)", false},
	{"load_batches", "error", "text", "TEXT", "text", true},
	{"daily_attendance", "site", "text", "TEXT", "varchar(128)", false},
	{"daily_attendance", "user_id", "text", "TEXT", "varchar(128)", false},
	{"daily_attendance", "work_date", "date", "TEXT", "date", false},
	{"daily_attendance", "person_id", "text", "TEXT", "varchar(128)", true},
	{"daily_attendance", "time_zone", "text", "TEXT", "varchar(64)", false},
	{"daily_attendance", "first_in", "timestamp with time zone", "TEXT", "datetime(6)", true},
	{"daily_attendance", "last_out", "timestamp with time zone", "TEXT", "datetime(6)", true},
	{"daily_attendance", "worked_minutes", "integer", "INTEGER", "int(11)", false},
	{"daily_attendance", "late_minutes", "integer", "INTEGER", "int(11)", false},
	{"daily_attendance", "early_leave_minutes", "integer", "INTEGER", "int(11)", false},
	{"daily_attendance", "overtime_minutes", "integer", "INTEGER", "int(11)", false},
	{"daily_attendance", "shift", "text", "TEXT", "varchar(128)", false},
	{"daily_attendance", "punch_count", "integer", "INTEGER", "int(11)", false},
	{"daily_attendance", "double_punches", "integer", "INTEGER", "int(11)", false},
	{"daily_attendance", "batch_id", "text", "TEXT", "varchar(128)", false},
	{"daily_attendance", "updated_at", "timestamp with time zone", "TEXT", "datetime(6)", false},
	{"daily_attendance", "worked_us", "bigint", "INTEGER", "bigint(20)", true},
	{"daily_attendance", "last_kept_at", "timestamp with time zone", "TEXT", "datetime(6)", true},
	{"daily_attendance", "last_at", "timestamp with time zone", "TEXT", "datetime(6)", true},
	{"daily_attendance", "open_since", "timestamp with time zone", "TEXT", "datetime(6)", true},
	{"daily_attendance", "rules_version", "text", "TEXT", "varchar(128)", true},
	{"daily_attendance", "revision", "bigint", "INTEGER", "bigint(20)", true},
	{"business_records", "id", "character varying(64)", "TEXT", "varchar(64)", false},
	{"business_records", "rules_version", "text", "TEXT", "varchar(128)", false},
	{"business_records", "source", "text", "TEXT", "varchar(128)", false},
	{"business_records", "natural_key", "text", "TEXT", "varchar(512)", false},
	{"business_records", "occurred_at", "timestamp with time zone", "TEXT", "datetime(6)", true},
	{"business_records", "fields", "jsonb", "TEXT", "longtext", false},
	{"business_records", "payload", "json", "TEXT", "longtext", false},
	{"business_records", "raw_id", "text", "TEXT", "varchar(128)", false},
	{"business_records", "raw_subject", "text", "TEXT", "varchar(255)", false},
	{"business_records", "raw_stream", "text", "TEXT", "varchar(128)", false},
	{"business_records", "raw_sequence", "bigint", "INTEGER", "bigint(20)", false},
	{"business_records", "clean_sequence", "bigint", "INTEGER", "bigint(20)", false},
	{"business_records", "run_id", "text", "TEXT", "varchar(128)", false},
	{"business_records", "correlation_id", "text", "TEXT", "varchar(128)", false},
	{"business_records", "batch_id", "text", "TEXT", "varchar(128)", false},
	{"business_records", "loaded_at", "timestamp with time zone", "TEXT", "datetime(6)", false},
}

// tables are the tables of the logical schema, as an SQL list.
const tables = `('attendance_events', 'load_batches', 'daily_attendance', 'business_records')`

// latest is the version the embedded migrations lead to.
const latest = 5

var (
	indexes = []string{
		"attendance_events_day_idx",
		"attendance_events_raw_id_idx",
		"attendance_events_user_occurred_idx",
		"business_records_source_key_idx",
		"load_batches_sink_started_idx",
	}
	checks = []string{
		"attendance_events_direction_check",
		"attendance_events_sequence_check",
		"attendance_events_state_check",
		"business_records_fields_check",
		"business_records_payload_check",
		"business_records_sequence_check",
		"daily_attendance_counts_check",
		"load_batches_outcome_check",
	}
)

func want(d Dialect) schema {
	s := schema{Indexes: indexes, Checks: checks}
	switch d {
	case SQLite:
		s.Checks = nil
	case Postgres:
		// jsonb and json check themselves.
		s.Checks = slices.DeleteFunc(slices.Clone(checks), func(c string) bool {
			return c == "business_records_fields_check" || c == "business_records_payload_check"
		})
	}
	for _, c := range logical {
		typ := map[Dialect]string{Postgres: c.postgres, SQLite: c.sqlite, MySQL: c.mysql}[d]
		// A primary key column is NOT NULL in SQLite only because the
		// schema says so; the rest follows the logical table.
		s.Columns = append(s.Columns, column{Table: c.table, Name: c.name, Type: typ, Nullable: c.nullable})
	}
	// describe lists tables by name, columns in table order.
	slices.SortStableFunc(s.Columns, func(a, b column) int { return strings.Compare(a.Table, b.Table) })
	return s
}

// describe reads the schema db holds.
func describe(t *testing.T, db *sql.DB, d Dialect) schema {
	t.Helper()
	var cols, idx, chk string
	switch d {
	case Postgres:
		cols = `SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
			FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
			WHERE c.relname IN ` + tables + ` AND a.attnum > 0 AND NOT a.attisdropped
			ORDER BY c.relname, a.attnum`
		idx = `SELECT indexname FROM pg_indexes
			WHERE tablename IN ` + tables + ` AND indexname NOT LIKE '%_pkey'
			ORDER BY indexname`
		chk = `SELECT con.conname FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
			WHERE con.contype = 'c' AND c.relname IN ` + tables + `
			ORDER BY con.conname`
	case SQLite:
		cols = `SELECT m.name, p.name, p.type, NOT p."notnull"
			FROM sqlite_schema m, pragma_table_info(m.name) p
			WHERE m.type = 'table' AND m.name IN ` + tables + `
			ORDER BY m.name, p.cid`
		idx = `SELECT name FROM sqlite_schema
			WHERE type = 'index' AND tbl_name IN ` + tables + ` AND name NOT LIKE 'sqlite_autoindex%'
			ORDER BY name`
	case MySQL:
		cols = `SELECT table_name, column_name, column_type, is_nullable = 'YES'
			FROM information_schema.columns
			WHERE table_schema = DATABASE() AND table_name IN ` + tables + `
			ORDER BY table_name, ordinal_position`
		idx = `SELECT DISTINCT index_name FROM information_schema.statistics
			WHERE table_schema = DATABASE() AND table_name IN ` + tables + ` AND index_name <> 'PRIMARY'
			ORDER BY index_name`
		chk = `SELECT constraint_name FROM information_schema.check_constraints
			WHERE constraint_schema = DATABASE() AND table_name IN ` + tables + `
			ORDER BY constraint_name`
	}
	var s schema
	query(t, db, cols, func(rs *sql.Rows) error {
		var c column
		err := rs.Scan(&c.Table, &c.Name, &c.Type, &c.Nullable)
		s.Columns = append(s.Columns, c)
		return err
	})
	query(t, db, idx, func(rs *sql.Rows) error {
		var n string
		err := rs.Scan(&n)
		s.Indexes = append(s.Indexes, n)
		return err
	})
	if chk != "" {
		query(t, db, chk, func(rs *sql.Rows) error {
			var n string
			err := rs.Scan(&n)
			s.Checks = append(s.Checks, n)
			return err
		})
	}
	return s
}

func query(t *testing.T, db *sql.DB, q string, scan func(*sql.Rows) error) {
	t.Helper()
	rs, err := db.QueryContext(t.Context(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	for rs.Next() {
		if err := scan(rs); err != nil {
			t.Fatal(err)
		}
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
}

// open returns a handle on a fresh database of dialect d; each call for the
// same name (within one test) is a separate pool on the same database, like
// a separate replica.
func open(t *testing.T, d Dialect) func() *sql.DB {
	t.Helper()
	var driver, dsn string
	switch d {
	case Postgres:
		driver, dsn = "pgx", dbtest.PostgresURL(t)
	case MySQL:
		driver, dsn = "mysql", dbtest.MySQLDSN(t)
	case SQLite:
		driver, dsn = "sqlite", "file:"+filepath.Join(t.TempDir(), "m.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	}
	return func() *sql.DB {
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		if d == SQLite {
			db.SetMaxOpenConns(1) // as the sink runs it
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
}

var dialects = []Dialect{Postgres, SQLite, MySQL}

func TestUpTwice(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			db := open(t, d)()
			ctx := t.Context()
			if cur, got, err := Version(ctx, db, d); err != nil || cur != 0 || got != latest {
				t.Fatalf("Version before Up = %d, %d, %v; want 0, %d, nil", cur, got, err, latest)
			}
			for i := range 2 {
				if err := Up(ctx, db, d, log); err != nil {
					t.Fatalf("Up #%d: %v", i+1, err)
				}
			}
			if cur, got, err := Version(ctx, db, d); err != nil || cur != latest || got != latest {
				t.Errorf("Version after Up = %d, %d, %v; want %d, %d, nil", cur, got, err, latest, latest)
			}
			if diff := cmp.Diff(want(d), describe(t, db, d)); diff != "" {
				t.Errorf("schema (-want +got):\n%s", diff)
			}
			checkConstraints(t, db, d)
		})
	}
}

// checkConstraints inserts one good row and rows that the CHECK constraints
// must refuse.
func checkConstraints(t *testing.T, db *sql.DB, d Dialect) {
	t.Helper()
	ph := func(i int) string {
		if d == Postgres {
			return fmt.Sprintf("$%d", i)
		}
		return "?"
	}
	q := "INSERT INTO attendance_events (id, rules_version, site, device_serial, user_id, occurred_at, device_time, time_zone, " +
		"direction, state, verify_mode, work_date, raw_id, raw_subject, raw_stream, raw_sequence, clean_sequence, batch_id) VALUES ("
	for i := 1; i <= 18; i++ {
		if i > 1 {
			q += ", "
		}
		q += ph(i)
	}
	q += ")"
	occurred := any("2024-03-01 07:58:00")
	if d == SQLite {
		occurred = "2024-03-01T07:58:00.000000000Z"
	}
	row := func(id, direction string, state int) []any {
		return []any{id, "r", "hq", "ZK1", "7", occurred, "2024-03-01T15:58:00", "Asia/Singapore",
			direction, state, 1, "2024-03-01", "raw-1", "raw.punch.hq.ZK1", "RAW", 1, 1, "b1"}
	}
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, q, row("good", "in", 1)...); err != nil {
		t.Fatalf("insert a valid row: %v", err)
	}
	for name, args := range map[string][]any{
		"direction": row("bad-direction", "sideways", 1),
		"state":     row("bad-state", "in", 256),
		"negative":  row("neg-state", "in", -1),
		"duplicate": row("good", "in", 1),
	} {
		if _, err := db.ExecContext(ctx, q, args...); err == nil {
			t.Errorf("insert with a bad %s succeeded", name)
		}
	}
}

// TestUpConcurrently starts migrations from four replicas at once: one
// applies them, the others wait for its lock and find nothing to do.
func TestUpConcurrently(t *testing.T) {
	for _, d := range []Dialect{Postgres, MySQL} {
		t.Run(string(d), func(t *testing.T) {
			newDB := open(t, d)
			const replicas = 4
			dbs := make([]*sql.DB, replicas)
			for i := range dbs {
				dbs[i] = newDB()
			}
			var (
				wg   sync.WaitGroup
				errs = make([]error, replicas)
			)
			for i, db := range dbs {
				wg.Go(func() {
					errs[i] = Up(t.Context(), db, d, slog.New(slog.DiscardHandler))
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("Up: %v", err)
			}
			var applied int
			if err := dbs[0].QueryRowContext(t.Context(),
				`SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&applied); err != nil {
				t.Fatal(err)
			}
			if applied != latest {
				t.Errorf("%d migrations recorded, want each of %d once", applied, latest)
			}
			if diff := cmp.Diff(want(d), describe(t, dbs[0], d)); diff != "" {
				t.Errorf("schema (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDown checks that every migration's Down section undoes its Up.
func TestDown(t *testing.T) {
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			db := open(t, d)()
			ctx := t.Context()
			if err := Up(ctx, db, d, slog.New(slog.DiscardHandler)); err != nil {
				t.Fatal(err)
			}
			p, err := provider(db, d)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.DownTo(ctx, 0); err != nil {
				t.Fatalf("DownTo(0): %v", err)
			}
			if diff := cmp.Diff(schema{}, describe(t, db, d)); diff != "" {
				t.Errorf("schema after down (-want +got):\n%s", diff)
			}
			if err := Up(ctx, db, d, slog.New(slog.DiscardHandler)); err != nil {
				t.Fatalf("Up after down: %v", err)
			}
			if diff := cmp.Diff(want(d), describe(t, db, d)); diff != "" {
				t.Errorf("schema (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnknownDialect(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := Up(context.Background(), db, "oracle", slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("Up with an unknown dialect returned nil")
	}
}

// TestUpgradeKeepsData migrates a database holding version 1 with a row in
// it to the latest version: the row stays and the schema is the latest.
func TestUpgradeKeepsData(t *testing.T) {
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			db := open(t, d)()
			ctx := t.Context()
			p, err := provider(db, d)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, 1); err != nil {
				t.Fatalf("UpTo(1): %v", err)
			}
			checkConstraints(t, db, d)
			if err := Up(ctx, db, d, slog.New(slog.DiscardHandler)); err != nil {
				t.Fatalf("Up from version 1: %v", err)
			}
			var n int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM attendance_events WHERE id = 'good'`).Scan(&n); err != nil || n != 1 {
				t.Errorf("row loaded under version 1: count = %d, %v; want 1", n, err)
			}
			if diff := cmp.Diff(want(d), describe(t, db, d)); diff != "" {
				t.Errorf("schema (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRecordTablesConcurrently creates the typed record tables from four
// replicas at once on a migrated database, twice over (the second time
// with one more field):
// every call succeeds, and the tables have exactly the declared columns.
func TestRecordTablesConcurrently(t *testing.T) {
	v1, err := recordtable.Parse([]byte("records:\n  orders: {fields: {order_id: {type: string}, cents: {type: int}}}\n  tickets: {fields: {opened: {type: time}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := recordtable.Parse([]byte("records:\n  orders: {fields: {order_id: {type: string}, cents: {type: int}, paid: {type: bool}}}\n  tickets: {fields: {opened: {type: time}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []Dialect{Postgres, MySQL} {
		t.Run(string(d), func(t *testing.T) {
			newDB := open(t, d)
			const replicas = 4
			dbs := make([]*sql.DB, replicas)
			for i := range dbs {
				dbs[i] = newDB()
			}
			// Up's own concurrency is TestUpConcurrently's.
			if err := Up(t.Context(), dbs[0], d, nil); err != nil {
				t.Fatal(err)
			}
			for _, set := range []recordtable.Set{v1, v2} {
				var (
					wg   sync.WaitGroup
					errs = make([]error, replicas)
				)
				for i, db := range dbs {
					wg.Go(func() { errs[i] = RecordTables(t.Context(), db, d, set, nil) })
				}
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					t.Fatalf("RecordTables: %v", err)
				}
			}
			for table, want := range map[string][]string{
				"records_orders":  {"cents", "order_id", "paid"},
				"records_tickets": {"opened"},
			} {
				var got []string
				query(t, dbs[0], fmt.Sprintf(map[Dialect]string{
					Postgres: `SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid WHERE c.relname = '%s' AND a.attnum > 0 AND NOT a.attisdropped`,
					MySQL:    `SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '%s'`,
				}[d], table), func(rs *sql.Rows) error {
					var c string
					err := rs.Scan(&c)
					if !slices.Contains(recordtable.FixedColumns, c) {
						got = append(got, c)
					}
					return err
				})
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("%s typed columns = %v, want %v", table, got, want)
				}
			}
		})
	}
}

// TestRecordTablesTypeChanged refuses a field whose declared type is no
// longer its column's, naming the column and what to do.
func TestRecordTablesTypeChanged(t *testing.T) {
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			db := open(t, d)()
			ctx := t.Context()
			set := func(typ string) recordtable.Set {
				s, err := recordtable.Parse([]byte("records:\n  orders: {fields: {cents: {type: " + typ + "}}}\n"))
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			if err := Up(ctx, db, d, nil); err != nil {
				t.Fatal(err)
			}
			if err := RecordTables(ctx, db, d, set("int"), nil); err != nil {
				t.Fatal(err)
			}
			if err := RecordTables(ctx, db, d, set("int"), nil); err != nil {
				t.Fatalf("again with the same types: %v", err)
			}
			err := RecordTables(ctx, db, d, set("string"), nil)
			if err == nil {
				t.Fatal("RecordTables with cents changed to string returned nil")
			}
			for _, w := range []string{"records_orders", "column cents", "declared string", "ALTER TABLE records_orders"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
