package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/proto"
)

func TestClassify(t *testing.T) {
	pg := func(code string) error {
		return fmt.Errorf("copy into attendance_events: %w", &pgconn.PgError{Code: code, Message: "server says no"})
	}
	tests := []struct {
		name string
		err  error
		want fault.Class
	}{
		{"string too long", pg("22001"), fault.Permanent},
		{"numeric out of range", pg("22003"), fault.Permanent},
		{"invalid datetime", pg("22007"), fault.Permanent},
		{"invalid byte sequence", pg("22021"), fault.Permanent},
		{"not null violation", pg("23502"), fault.Permanent},
		{"unique violation", pg("23505"), fault.Permanent},
		{"check violation", pg("23514"), fault.Permanent},
		{"undefined column", pg("42703"), fault.Permanent},
		{"syntax error", pg("42601"), fault.Permanent},
		{"index row too large", pg("54000"), fault.Permanent},
		{"insufficient privilege", pg("42501"), fault.Transient},
		{"serialization failure", pg("40001"), fault.Transient},
		{"deadlock", pg("40P01"), fault.Transient},
		{"admin shutdown", pg("57P01"), fault.Transient},
		{"cannot connect now", pg("57P03"), fault.Transient},
		{"query canceled", pg("57014"), fault.Transient},
		{"connection failure", pg("08006"), fault.Transient},
		{"too many connections", pg("53300"), fault.Transient},
		{"disk full", pg("53100"), fault.Transient},
		{"lock not available", pg("55P03"), fault.Transient},
		{"deadline", fmt.Errorf("copy: %w", context.DeadlineExceeded), fault.Transient},
		{"network", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, fault.Transient},
		{"already permanent", fault.NewPermanent(proto.ReasonRejectedBySink, errors.New("bad flag")), fault.Permanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify(tt.err)
			got, reason := fault.Classify(err)
			if got != tt.want {
				t.Errorf("class = %v, want %v", got, tt.want)
			}
			if got == fault.Permanent && reason != proto.ReasonRejectedBySink {
				t.Errorf("reason = %q, want %q", reason, proto.ReasonRejectedBySink)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("classified error does not wrap the original")
			}
		})
	}
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

func TestCollides(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"event id taken", &pgconn.PgError{Code: "23505", TableName: "attendance_events", ConstraintName: "attendance_events_pkey"}, "attendance_events"},
		{"record id taken", &pgconn.PgError{Code: "23505", TableName: "business_records", ConstraintName: "business_records_pkey"}, "business_records"},
		{"wrapped", fmt.Errorf("copy: %w", &pgconn.PgError{Code: "23505", TableName: "attendance_events", ConstraintName: "attendance_events_pkey"}), "attendance_events"},
		{"batch id taken", &pgconn.PgError{Code: "23505", TableName: "load_batches", ConstraintName: "load_batches_pkey"}, ""},
		{"day taken", &pgconn.PgError{Code: "23505", TableName: "daily_attendance", ConstraintName: "daily_attendance_pkey"}, ""},
		{"check violation", &pgconn.PgError{Code: "23514", TableName: "attendance_events", ConstraintName: "attendance_events_direction_check"}, ""},
		{"not a server error", errors.New("23505"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := collides(tt.err); got != tt.want {
				t.Errorf("collides = %q, want %q", got, tt.want)
			}
		})
	}
}
