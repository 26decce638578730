package mysql

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/proto"
)

func TestClassify(t *testing.T) {
	my := func(n uint16, state string) error {
		e := &mysql.MySQLError{Number: n, Message: "server says no"}
		copy(e.SQLState[:], state)
		return fmt.Errorf("insert into attendance_events: %w", e)
	}
	tests := []struct {
		name string
		err  error
		want fault.Class
	}{
		{"data too long", my(1406, "22001"), fault.Permanent},
		{"out of range", my(1264, "22003"), fault.Permanent},
		{"incorrect datetime", my(1292, "22007"), fault.Permanent},
		{"incorrect string value", my(1366, "HY000"), fault.Permanent},
		{"not null", my(1048, "23000"), fault.Permanent},
		{"duplicate key", my(1062, "23000"), fault.Permanent},
		{"check constraint (MariaDB)", my(4025, "23000"), fault.Permanent},
		{"check constraint (MySQL)", my(3819, "HY000"), fault.Permanent},
		{"invalid JSON (MySQL)", my(3140, "22032"), fault.Permanent},
		{"deadlock", my(1213, "40001"), fault.Transient},
		{"lock wait timeout", my(1205, "HY000"), fault.Transient},
		{"connection killed", my(1927, "70100"), fault.Transient},
		{"query interrupted", my(1317, "70100"), fault.Transient},
		{"access denied", my(1045, "28000"), fault.Transient},
		{"account locked", my(4151, "HY000"), fault.Transient},
		{"too many connections", my(1040, "08004"), fault.Transient},
		{"server shutdown", my(1053, "08S01"), fault.Transient},
		{"bad connection", fmt.Errorf("exec: %w", driver.ErrBadConn), fault.Transient},
		{"invalid connection", mysql.ErrInvalidConn, fault.Transient},
		{"deadline", context.DeadlineExceeded, fault.Transient},
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
	if err := appendTSV(&b.Buffer, []any{3.5}); err == nil {
		t.Error("appendTSV of a float returned nil")
	}
}

type bytesBuffer struct{ bytes.Buffer }
