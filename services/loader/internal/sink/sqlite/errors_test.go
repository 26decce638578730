package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/services/loader/internal/sink/sinktest"
)

// TestClassify classifies errors that a real SQLite database returns.
func TestClassify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (
		k INTEGER PRIMARY KEY, n INTEGER NOT NULL CHECK (n < 10), s TEXT) STRICT`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO t VALUES (1, 1, 'a')`); err != nil {
		t.Fatal(err)
	}
	// A second handle on the file holds the write lock for "busy".
	locker, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	lconn, err := locker.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lconn.Close()

	tests := []struct {
		name string
		run  func() error
		want fault.Class
	}{
		{"check", func() error { return exec(ctx, db, `INSERT INTO t VALUES (2, 11, 'b')`) }, fault.Permanent},
		{"not null", func() error { return exec(ctx, db, `INSERT INTO t VALUES (2, NULL, 'b')`) }, fault.Permanent},
		{"primary key", func() error { return exec(ctx, db, `INSERT INTO t VALUES (1, 1, 'b')`) }, fault.Permanent},
		{"strict datatype", func() error { return exec(ctx, db, `INSERT INTO t VALUES (2, 'many', 'b')`) }, fault.Permanent},
		{"too big", func() error { return exec(ctx, db, `SELECT zeroblob(2000000000)`) }, fault.Permanent},
		{"busy", func() error {
			if _, err := lconn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
				t.Fatal(err)
			}
			defer func() { _, _ = lconn.ExecContext(ctx, "ROLLBACK") }()
			return exec(ctx, db, `INSERT INTO t VALUES (3, 1, 'c')`)
		}, fault.Transient},
		{"no such table", func() error { return exec(ctx, db, `INSERT INTO missing VALUES (1)`) }, fault.Transient},
		{"cancelled", func() error {
			c, cancel := context.WithCancel(ctx)
			cancel()
			return exec(c, db, `INSERT INTO t VALUES (4, 1, 'd')`)
		}, fault.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := tt.run()
			if orig == nil {
				t.Fatal("statement succeeded, want an error")
			}
			sinktest.CheckClass(t, orig, classify(orig), tt.want)
		})
	}
	sinktest.CheckClassify(t, classify, nil)
}

func exec(ctx context.Context, db *sql.DB, q string) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}
