package postgres

import (
	"strings"
	"time"

	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// eventColumns and recordColumns are the columns a batch writes (see
// sink.EventColumns); loaded_at takes the transaction's time from its
// default.
var (
	eventColumns     = sink.EventColumns
	recordColumns    = sink.RecordColumns
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
		v, err := sink.CheckEvent(e)
		if err != nil {
			return nil, err
		}
		start := len(values)
		values = append(values,
			e.ID, e.RulesVersion, e.Site, e.DeviceSerial, e.UserID, v.PersonID,
			e.OccurredAt, e.DeviceTime, e.TimeZone, e.Direction, e.State, e.VerifyMode,
			workDate, v.Flags,
			e.Lineage.RawID, e.Lineage.RawSubject, e.Lineage.RawStream, v.RawSeq, v.CleanSeq,
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
		v, err := sink.CheckRecord(r)
		if err != nil {
			return nil, err
		}
		var occurred any
		if r.OccurredAt != nil {
			occurred = *r.OccurredAt
		}
		start := len(values)
		values = append(values,
			r.ID, r.RulesVersion, r.Source, r.NaturalKey, occurred, v.Fields, []byte(r.Payload),
			r.Lineage.RawID, r.Lineage.RawSubject, r.Lineage.RawStream, v.RawSeq, v.CleanSeq,
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
