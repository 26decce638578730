package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/services/loader/internal/sink/sinktest"
)

func TestClassify(t *testing.T) {
	pg := func(code string) error {
		return fmt.Errorf("copy into attendance_events: %w", &pgconn.PgError{Code: code, Message: "server says no"})
	}
	sinktest.CheckClassify(t, classify, []sinktest.ClassifyCase{
		{Name: "string too long", Err: pg("22001"), Want: fault.Permanent},
		{Name: "numeric out of range", Err: pg("22003"), Want: fault.Permanent},
		{Name: "invalid datetime", Err: pg("22007"), Want: fault.Permanent},
		{Name: "invalid byte sequence", Err: pg("22021"), Want: fault.Permanent},
		{Name: "not null violation", Err: pg("23502"), Want: fault.Permanent},
		{Name: "unique violation", Err: pg("23505"), Want: fault.Permanent},
		{Name: "check violation", Err: pg("23514"), Want: fault.Permanent},
		{Name: "undefined column", Err: pg("42703"), Want: fault.Permanent},
		{Name: "syntax error", Err: pg("42601"), Want: fault.Permanent},
		{Name: "index row too large", Err: pg("54000"), Want: fault.Permanent},
		{Name: "insufficient privilege", Err: pg("42501"), Want: fault.Transient},
		{Name: "serialization failure", Err: pg("40001"), Want: fault.Transient},
		{Name: "deadlock", Err: pg("40P01"), Want: fault.Transient},
		{Name: "admin shutdown", Err: pg("57P01"), Want: fault.Transient},
		{Name: "cannot connect now", Err: pg("57P03"), Want: fault.Transient},
		{Name: "query canceled", Err: pg("57014"), Want: fault.Transient},
		{Name: "connection failure", Err: pg("08006"), Want: fault.Transient},
		{Name: "too many connections", Err: pg("53300"), Want: fault.Transient},
		{Name: "disk full", Err: pg("53100"), Want: fault.Transient},
		{Name: "lock not available", Err: pg("55P03"), Want: fault.Transient},
		{Name: "deadline", Err: fmt.Errorf("copy: %w", context.DeadlineExceeded), Want: fault.Transient},
		{Name: "network", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, Want: fault.Transient},
	})
}

func TestCollides(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"event id taken", &pgconn.PgError{Code: "23505", TableName: "attendance_events", ConstraintName: "attendance_events_pkey"}, "attendance_events"},
		{"record id taken", &pgconn.PgError{Code: "23505", TableName: "business_records", ConstraintName: "business_records_pkey"}, "business_records"},
		{"typed record id taken", &pgconn.PgError{Code: "23505", TableName: "records_orders", ConstraintName: "records_orders_pkey"}, "records_orders"},
		{"a table the batch does not copy", &pgconn.PgError{Code: "23505", TableName: "records_tickets", ConstraintName: "records_tickets_pkey"}, ""},
		{"wrapped", fmt.Errorf("copy: %w", &pgconn.PgError{Code: "23505", TableName: "attendance_events", ConstraintName: "attendance_events_pkey"}), "attendance_events"},
		{"batch id taken", &pgconn.PgError{Code: "23505", TableName: "load_batches", ConstraintName: "load_batches_pkey"}, ""},
		{"day taken", &pgconn.PgError{Code: "23505", TableName: "daily_attendance", ConstraintName: "daily_attendance_pkey"}, ""},
		{"check violation", &pgconn.PgError{Code: "23514", TableName: "attendance_events", ConstraintName: "attendance_events_direction_check"}, ""},
		{"not a server error", errors.New("23505"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := collides(tt.err, []string{"attendance_events", "business_records", "records_orders"}); got != tt.want {
				t.Errorf("collides = %q, want %q", got, tt.want)
			}
		})
	}
}
