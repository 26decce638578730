package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/pressly/goose/v3/lock"
)

// mysqlLocker is a goose session locker on a MySQL/MariaDB named lock, the
// counterpart of PostgreSQL's session advisory lock: GET_LOCK waits on the
// server, and the server releases the lock when the session ends, so a
// replica that dies while migrating does not hold the others up.
//
// It replaces goose's own lock.NewMySQLTableLocker, which scans DATETIME
// columns into time.Time and so retries silently until its timeout unless
// the DSN sets parseTime=true, and which leaves a lock behind for its lease
// (30s) when the holder dies.
type mysqlLocker struct {
	wait time.Duration
}

var _ lock.SessionLocker = mysqlLocker{}

// mysqlLockName is one lock per database: named locks are server-wide and
// at most 64 characters long.
const mysqlLockName = `CONCAT('punchflow_migrate_', SHA1(DATABASE()))`

func (l mysqlLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	var got sql.NullInt64
	err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(`+mysqlLockName+`, ?)`, int(l.wait.Seconds())).Scan(&got)
	if err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	if !got.Valid || got.Int64 != 1 {
		return fmt.Errorf("take the migration lock: another migration held it for %s", l.wait)
	}
	return nil
}

func (l mysqlLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	var released sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT RELEASE_LOCK(`+mysqlLockName+`)`).Scan(&released); err != nil {
		return fmt.Errorf("release the migration lock: %w", err)
	}
	if !released.Valid || released.Int64 != 1 {
		return fmt.Errorf("release the migration lock: this session did not hold it")
	}
	return nil
}
