package postgres

import (
	"math"
	"strings"
	"time"

	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// eventColumns are the columns a batch writes to attendance_events;
// loaded_at takes the transaction's time from its default.
var eventColumns = []string{
	"id", "rules_version", "site", "device_serial", "user_id", "person_id",
	"occurred_at", "device_time", "time_zone", "direction", "state", "verify_mode",
	"work_date", "flags",
	"raw_id", "raw_subject", "raw_stream", "raw_sequence", "clean_sequence",
	"run_id", "correlation_id", "batch_id",
	"department", "roster_version", "shift", "shift_start", "shift_end", "rounded_at",
	"late_minutes", "early_leave_minutes", "overtime_minutes", "clock_offset_ms",
}

// recordColumns are the columns a batch writes to business_records.
var recordColumns = []string{
	"id", "rules_version", "source", "natural_key", "occurred_at", "fields", "payload",
	"raw_id", "raw_subject", "raw_stream", "raw_sequence", "clean_sequence",
	"run_id", "correlation_id", "batch_id",
}

var (
	eventColumnList  = strings.Join(eventColumns, ", ")
	recordColumnList = strings.Join(recordColumns, ", ")
)

// encodeEvents turns the events of b into COPY rows in eventColumns order.
// A value that cannot be stored faithfully is a permanent error naming the
// event.
func encodeEvents(b *sink.Batch) ([][]any, error) {
	rows := make([][]any, len(b.Events))
	// One backing array for all the rows' values: one allocation, not one
	// per row.
	values := make([]any, 0, len(b.Events)*len(eventColumns))
	for i := range b.Events {
		e := &b.Events[i]
		workDate, err := time.Parse(time.DateOnly, e.WorkDate)
		if err != nil {
			return nil, sink.Refused("event", e.ID, "work_date %q is not a date as YYYY-MM-DD", e.WorkDate)
		}
		flags, err := sink.JoinFlags(e.Flags)
		if err != nil {
			return nil, sink.Refused("event", e.ID, "%v", err)
		}
		rawSeq, err := sink.Seq(e.Lineage.RawSequence)
		if err != nil {
			return nil, sink.Refused("event", e.ID, "lineage.raw_sequence: %v", err)
		}
		cleanSeq, err := sink.Seq(e.Seq)
		if err != nil {
			return nil, sink.Refused("event", e.ID, "clean sequence: %v", err)
		}
		for _, v := range []int{e.State, e.VerifyMode, e.LateMinutes, e.EarlyLeaveMinutes, e.OvertimeMinutes} {
			if v < math.MinInt32 || v > math.MaxInt32 {
				return nil, sink.Refused("event", e.ID, "%d (state, verify mode or minutes) does not fit in an integer", v)
			}
		}
		var personID any
		if e.PersonID != "" {
			personID = e.PersonID
		}
		start := len(values)
		values = append(values,
			e.ID, e.RulesVersion, e.Site, e.DeviceSerial, e.UserID, personID,
			e.OccurredAt, e.DeviceTime, e.TimeZone, e.Direction, e.State, e.VerifyMode,
			workDate, flags,
			e.Lineage.RawID, e.Lineage.RawSubject, e.Lineage.RawStream, rawSeq, cleanSeq,
			e.Lineage.RunID, e.Lineage.CorrelationID, b.ID,
			e.Department, e.RosterVersion, e.Shift, optionalTime(e.ShiftStart), optionalTime(e.ShiftEnd), optionalTime(e.RoundedAt),
			e.LateMinutes, e.EarlyLeaveMinutes, e.OvertimeMinutes, e.ClockOffsetMS,
		)
		rows[i] = values[start:len(values):len(values)]
	}
	return rows, nil
}

// encodeRecords turns the records of b into COPY rows in recordColumns
// order. Fields go as the JSON object they travelled as (or {}), the
// payload byte for byte; the server checks that both are JSON.
func encodeRecords(b *sink.Batch) ([][]any, error) {
	rows := make([][]any, len(b.Records))
	values := make([]any, 0, len(b.Records)*len(recordColumns))
	for i := range b.Records {
		r := &b.Records[i]
		rawSeq, err := sink.Seq(r.Lineage.RawSequence)
		if err != nil {
			return nil, sink.Refused("record", r.ID, "lineage.raw_sequence: %v", err)
		}
		cleanSeq, err := sink.Seq(r.Seq)
		if err != nil {
			return nil, sink.Refused("record", r.ID, "clean sequence: %v", err)
		}
		var occurred any
		if r.OccurredAt != nil {
			occurred = *r.OccurredAt
		}
		fields, err := r.FieldsJSON()
		if err != nil {
			return nil, sink.Refused("record", r.ID, "%v", err)
		}
		start := len(values)
		values = append(values,
			r.ID, r.RulesVersion, r.Source, r.NaturalKey, occurred, fields, []byte(r.Payload),
			r.Lineage.RawID, r.Lineage.RawSubject, r.Lineage.RawStream, rawSeq, cleanSeq,
			r.Lineage.RunID, r.Lineage.CorrelationID, b.ID,
		)
		rows[i] = values[start:len(values):len(values)]
	}
	return rows, nil
}

// optionalTime is NULL for a nil instant.
func optionalTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}
