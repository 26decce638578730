package mysql

import (
	"time"

	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// eventColumns and recordColumns are the columns a batch writes (see
// sink.EventColumns); loaded_at takes the statement's time from its
// default.
var (
	eventColumns  = sink.EventColumns
	recordColumns = sink.RecordColumns
)

// Row values are string, []byte (JSON text), int64, time.Time (UTC) or nil
// (NULL), which both methods know how to send.

// minTime and maxTime bound DATETIME.
var (
	minTime = time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// encodeEvents turns the events of b into rows in eventColumns order. A
// value that cannot be stored faithfully is a permanent error naming the
// event; the schema's constraints refuse the rest.
func encodeEvents(b *sink.Batch) ([][]any, error) {
	rows := make([][]any, len(b.Events))
	for i := range b.Events {
		e := &b.Events[i]
		at := e.OccurredAt.UTC()
		if at.Before(minTime) || at.After(maxTime) {
			return nil, sink.Refused("event", e.ID, "occurred_at %s is outside years 1000 to 9999", e.OccurredAt)
		}
		if _, err := time.Parse(time.DateOnly, e.WorkDate); err != nil {
			return nil, sink.Refused("event", e.ID, "work_date %q is not a date as YYYY-MM-DD", e.WorkDate)
		}
		v, err := sink.CheckEvent(e)
		if err != nil {
			return nil, err
		}
		var instants [3]any
		for i, t := range []*time.Time{e.ShiftStart, e.ShiftEnd, e.RoundedAt} {
			if t == nil {
				continue
			}
			u := t.UTC()
			if u.Before(minTime) || u.After(maxTime) {
				return nil, sink.Refused("event", e.ID, "instant %s is outside years 1000 to 9999", t)
			}
			instants[i] = u
		}
		rows[i] = []any{
			e.ID, e.RulesVersion, e.Site, e.DeviceSerial, e.UserID, v.PersonID,
			at, e.DeviceTime, e.TimeZone, e.Direction, int64(e.State), int64(e.VerifyMode),
			e.WorkDate, v.Flags,
			e.Lineage.RawID, e.Lineage.RawSubject, e.Lineage.RawStream, v.RawSeq, v.CleanSeq,
			e.Lineage.RunID, e.Lineage.CorrelationID, b.ID,
			e.Department, e.RosterVersion, e.Shift, instants[0], instants[1], instants[2],
			int64(e.LateMinutes), int64(e.EarlyLeaveMinutes), int64(e.OvertimeMinutes), e.ClockOffsetMS,
		}
	}
	return rows, nil
}

// encodeRecords turns the records of b into rows in recordColumns order.
// Fields go as the JSON object they travelled as (or {}), the payload byte
// for byte; the json_valid CHECKs test both.
func encodeRecords(b *sink.Batch) ([][]any, error) {
	rows := make([][]any, len(b.Records))
	for i := range b.Records {
		r := &b.Records[i]
		var occurred any
		if r.OccurredAt != nil {
			at := r.OccurredAt.UTC()
			if at.Before(minTime) || at.After(maxTime) {
				return nil, sink.Refused("record", r.ID, "occurred_at %s is outside years 1000 to 9999", r.OccurredAt)
			}
			occurred = at
		}
		v, err := sink.CheckRecord(r)
		if err != nil {
			return nil, err
		}
		rows[i] = []any{
			r.ID, r.RulesVersion, r.Source, r.NaturalKey, occurred, v.Fields, []byte(r.Payload),
			r.Lineage.RawID, r.Lineage.RawSubject, r.Lineage.RawStream, v.RawSeq, v.CleanSeq,
			r.Lineage.RunID, r.Lineage.CorrelationID, b.ID,
		}
	}
	return rows, nil
}
