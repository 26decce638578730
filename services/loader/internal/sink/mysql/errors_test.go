package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/services/loader/internal/sink/sinktest"
)

func TestClassify(t *testing.T) {
	my := func(n uint16, state string) error {
		e := &mysql.MySQLError{Number: n, Message: "server says no"}
		copy(e.SQLState[:], state)
		return fmt.Errorf("insert into attendance_events: %w", e)
	}
	sinktest.CheckClassify(t, classify, []sinktest.ClassifyCase{
		{Name: "data too long", Err: my(1406, "22001"), Want: fault.Permanent},
		{Name: "out of range", Err: my(1264, "22003"), Want: fault.Permanent},
		{Name: "incorrect datetime", Err: my(1292, "22007"), Want: fault.Permanent},
		{Name: "incorrect string value", Err: my(1366, "HY000"), Want: fault.Permanent},
		{Name: "not null", Err: my(1048, "23000"), Want: fault.Permanent},
		{Name: "duplicate key", Err: my(1062, "23000"), Want: fault.Permanent},
		{Name: "check constraint (MariaDB)", Err: my(4025, "23000"), Want: fault.Permanent},
		{Name: "check constraint (MySQL)", Err: my(3819, "HY000"), Want: fault.Permanent},
		{Name: "invalid JSON (MySQL)", Err: my(3140, "22032"), Want: fault.Permanent},
		{Name: "deadlock", Err: my(1213, "40001"), Want: fault.Transient},
		{Name: "lock wait timeout", Err: my(1205, "HY000"), Want: fault.Transient},
		{Name: "connection killed", Err: my(1927, "70100"), Want: fault.Transient},
		{Name: "query interrupted", Err: my(1317, "70100"), Want: fault.Transient},
		{Name: "access denied", Err: my(1045, "28000"), Want: fault.Transient},
		{Name: "account locked", Err: my(4151, "HY000"), Want: fault.Transient},
		{Name: "too many connections", Err: my(1040, "08004"), Want: fault.Transient},
		{Name: "server shutdown", Err: my(1053, "08S01"), Want: fault.Transient},
		{Name: "bad connection", Err: fmt.Errorf("exec: %w", driver.ErrBadConn), Want: fault.Transient},
		{Name: "invalid connection", Err: mysql.ErrInvalidConn, Want: fault.Transient},
		{Name: "deadline", Err: context.DeadlineExceeded, Want: fault.Transient},
	})
}

func TestAppendTSV(t *testing.T) {
	tests := []struct {
		name string
		row  []any
		want string
	}{
		{"plain", []any{"a", int64(-7), []byte(`{"k":1}`)}, "a\t-7\t{\"k\":1}\n"},
		{"null", []any{nil, "x"}, "\\N\tx\n"},
		{"escapes", []any{"tab\there", "new\nline", `back\slash`, "cr\r", "nul\x00"}, "tab\\there\tnew\\nline\tback\\\\slash\tcr\\r\tnul\\0\n"},
		{"the text \\N is not NULL", []any{`\N`}, "\\\\N\n"},
		{"utf-8", []any{"ünïcode ✓"}, "ünïcode ✓\n"},
		{"numbers and booleans", []any{3.5, -1e300, float64(12), true, false}, "3.5\t-1e+300\t12\t1\t0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytesBuffer
			if err := appendTSV(&b.Buffer, tt.row); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tt.want {
				t.Errorf("appendTSV = %q, want %q", got, tt.want)
			}
		})
	}
	var b bytesBuffer
	if err := appendTSV(&b.Buffer, []any{int32(3)}); err == nil {
		t.Error("appendTSV of an int32 returned nil")
	}
}

type bytesBuffer struct{ bytes.Buffer }

// TestTransactionIsolation asks for REPEATABLE READ only when the sessions
// do not start with it.
func TestTransactionIsolation(t *testing.T) {
	dsn := dbtest.MySQLDSN(t)
	for _, tt := range []struct {
		params string
		want   sql.IsolationLevel
	}{
		{"", sql.LevelDefault},
		{"?tx_isolation=%27READ-COMMITTED%27", sql.LevelRepeatableRead},
	} {
		db, err := sql.Open("mysql", dsn+tt.params)
		if err != nil {
			t.Fatal(err)
		}
		got, err := transactionIsolation(t.Context(), db)
		db.Close()
		if err != nil || got != tt.want {
			t.Errorf("sessions with %q: %v, %v; want %v", tt.params, got, err, tt.want)
		}
	}
}
