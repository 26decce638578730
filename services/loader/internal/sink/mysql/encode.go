package mysql

import (
	"time"

	"github.com/punchflow/punchflow/services/loader/internal/recordtable"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// eventColumns are the columns a batch writes to attendance_events (see
// sink.EventColumns); loaded_at takes the statement's time from its
// default.
var eventColumns = sink.EventColumns

// Row values are string, []byte (JSON text), int64, float64, bool,
// time.Time (UTC) or nil (NULL), which both methods know how to send.

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

// encodeRecords turns the records of group g of b into rows in the order
// of g.Columns(). Fields go as the JSON object they travelled as (or {}),
// the payload byte for byte; the json_valid CHECKs test both. A typed
// table's columns take the record's fields converted to their types
// (strings, whole numbers, doubles, booleans, instants as UTC DATETIME(6),
// dates), NULL where a field is absent.
func encodeRecords(b *sink.Batch, g sink.RecordGroup) ([][]any, error) {
	rows := make([][]any, len(g.Records))
	var typed []recordtable.Value
	for n, i := range g.Records {
		r := &b.Records[i]
		var occurred any
		if r.OccurredAt != nil {
			at := r.OccurredAt.UTC()
			if at.Before(minTime) || at.After(maxTime) {
				return nil, sink.Refused("record", r.ID, "occurred_at %s is outside years 1000 to 9999", r.OccurredAt)
			}
			occurred = at
		}
		var (
			v   sink.RecordValues
			err error
		)
		if v, typed, err = g.Check(r, typed[:0]); err != nil {
			return nil, err
		}
		row := make([]any, 0, len(g.Columns()))
		row = append(row, r.ID, r.RulesVersion)
		if g.Table == nil {
			row = append(row, r.Source)
		}
		row = append(row, r.NaturalKey, occurred)
		for k, tv := range typed {
			c := g.Table.Columns[k]
			if tv.Null {
				row = append(row, nil)
				continue
			}
			switch c.Type {
			case recordtable.String:
				row = append(row, tv.S)
			case recordtable.Int:
				row = append(row, tv.I)
			case recordtable.Number:
				row = append(row, tv.F)
			case recordtable.Bool:
				row = append(row, tv.B)
			case recordtable.Time:
				at := tv.T.UTC()
				if at.Before(minTime) || at.After(maxTime) {
					return nil, sink.Refused("record", r.ID, "field %s: %s is outside years 1000 to 9999", c.Name, tv.T)
				}
				row = append(row, at)
			case recordtable.Date:
				row = append(row, tv.T.Format(time.DateOnly))
			}
		}
		rows[n] = append(row, v.Fields, []byte(r.Payload),
			r.Lineage.RawID, r.Lineage.RawSubject, r.Lineage.RawStream, v.RawSeq, v.CleanSeq,
			r.Lineage.RunID, r.Lineage.CorrelationID, b.ID)
	}
	return rows, nil
}
