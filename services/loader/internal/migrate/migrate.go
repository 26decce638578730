// Package migrate brings a loader database to the current schema with goose
// migrations embedded in the binary, one directory of SQL files per dialect
// (sql/postgres, sql/sqlite, sql/mysql). Every dialect holds the same logical
// schema: attendance_events (the punch table: one row per clean event id,
// with lineage), daily_attendance (one row per site, user and work date),
// business_records (one row per clean record id: source, natural key and
// time as columns, the fields and the raw payload as JSON, with lineage) and
// load_batches (one row per batch attempt, for operators); see package sink
// for what each holds. RecordTables adds the typed tables of business
// records, records_<source>, which the rules file defines.
//
// Up is safe to call from several replicas at once on PostgreSQL (a
// session-level advisory lock held for the whole run) and MySQL/MariaDB (a
// named lock, GET_LOCK, likewise held by the migrating session). SQLite is the
// embedded, single-process sink: a database file has one loader, so it takes
// no lock.
package migrate

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

// Dialect names a database family with a migration directory of its own.
type Dialect string

// Supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
	MySQL    Dialect = "mysql"
)

//go:embed sql
var migrations embed.FS

// lockWait bounds how long Up waits for another replica's migration run.
// PostgreSQL's lock is polled every lockPoll; MySQL waits on the server.
const (
	lockWait = 5 * time.Minute
	lockPoll = time.Second
)

// Up applies every pending migration for dialect to db and logs each one it
// applied. Running it again when nothing is pending does nothing. db must be
// opened with a driver that matches dialect (pgx stdlib for Postgres,
// modernc.org/sqlite for SQLite, go-sql-driver/mysql for MySQL). Up does not
// close db. log may be nil.
//
// On PostgreSQL and MySQL, concurrent callers (replicas starting together)
// serialise on a database lock: one applies the migrations, the others wait
// for it (up to five minutes) and then find nothing pending.
func Up(ctx context.Context, db *sql.DB, dialect Dialect, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := provider(db, dialect)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := versionTable(ctx, db, dialect); err != nil {
		return fmt.Errorf("migrate %s: %w", dialect, err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", dialect, err)
	}
	for _, r := range results {
		log.InfoContext(ctx, "migration applied",
			slog.String("dialect", string(dialect)),
			slog.Int64("version", r.Source.Version),
			slog.String("file", r.Source.Path),
			slog.Duration("took", r.Duration))
	}
	v, _, err := p.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: read schema version: %w", dialect, err)
	}
	log.InfoContext(ctx, "schema up to date",
		slog.String("dialect", string(dialect)),
		slog.Int64("version", v),
		slog.Int("applied", len(results)),
		slog.Duration("took", time.Since(start)))
	return nil
}

// Version returns the schema version db is at (0 before any migration) and
// the version this binary's migrations lead to.
func Version(ctx context.Context, db *sql.DB, dialect Dialect) (current, latest int64, err error) {
	p, err := provider(db, dialect)
	if err != nil {
		return 0, 0, err
	}
	current, latest, err = p.GetVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate %s: read schema version: %w", dialect, err)
	}
	return current, latest, nil
}

// versionTable creates goose's version table with its zero row, under the
// migration lock, when the table is missing or empty. goose's Up creates it
// too, but before it takes the lock (while it checks for pending
// migrations), and on MySQL the CREATE TABLE commits on its own: a replica
// starting at the same moment could see the table without its zero row,
// take the lock first and fail with "missing zero version migration".
// SQLite has one loader a database file and needs none of this.
func versionTable(ctx context.Context, db *sql.DB, dialect Dialect) (err error) {
	locker, gd, err := lockerOf(dialect)
	if err != nil || locker == nil {
		return err
	}
	store, err := database.NewStore(gd, goose.DefaultTablename)
	if err != nil {
		return err
	}
	ext, ok := store.(database.StoreExtender)
	if !ok {
		return fmt.Errorf("goose's %s store cannot tell whether a table exists", gd)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := locker.SessionLock(ctx, conn); err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, locker.SessionUnlock(context.WithoutCancel(ctx), conn))
	}()
	exists, err := ext.TableExists(ctx, conn)
	if err != nil {
		return err
	}
	if !exists {
		if err := store.CreateVersionTable(ctx, conn); err != nil {
			return fmt.Errorf("create the version table: %w", err)
		}
	}
	rows, err := store.ListMigrations(ctx, conn)
	if err != nil || len(rows) > 0 {
		return err
	}
	if err := store.Insert(ctx, conn, database.InsertRequest{Version: 0}); err != nil {
		return fmt.Errorf("record version 0: %w", err)
	}
	return nil
}

// lockerOf returns the session lock that serialises migrations of dialect
// (nil for SQLite) and goose's name for the dialect.
func lockerOf(dialect Dialect) (lock.SessionLocker, goose.Dialect, error) {
	switch dialect {
	case Postgres:
		l, err := lock.NewPostgresSessionLocker(
			lock.WithLockTimeout(uint64(lockPoll/time.Second), uint64(lockWait/lockPoll)),
		)
		return l, goose.DialectPostgres, err
	case MySQL:
		return mysqlLocker{wait: lockWait}, goose.DialectMySQL, nil
	case SQLite:
		return nil, goose.DialectSQLite3, nil
	}
	return nil, "", fmt.Errorf("unknown dialect %q (want %s, %s or %s)", dialect, Postgres, SQLite, MySQL)
}

func provider(db *sql.DB, dialect Dialect) (*goose.Provider, error) {
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	locker, gd, err := lockerOf(dialect)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if locker != nil {
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	fsys, err := fs.Sub(migrations, "sql/"+string(dialect))
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", dialect, err)
	}
	p, err := goose.NewProvider(gd, db, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", dialect, err)
	}
	return p, nil
}
