package sqlite

import (
	"time"

	"github.com/punchflow/punchflow/services/loader/internal/recordtable"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// timeLayout is RFC 3339 in UTC with exactly nine fraction digits: it reads
// back with time.RFC3339Nano, and text order is time order, which the
// indexes on occurred_at and started_at rely on (plain RFC3339Nano drops
// trailing zeros, so "…:05Z" would sort after "…:05.5Z").
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func timestamp(t time.Time) string { return t.UTC().Format(timeLayout) }

// encodeEvents turns the events of b into INSERT arguments in
// insertEventsSQL order (sink.EventColumns, then loaded_at). A value that cannot be stored faithfully is a
// permanent error naming the event; the schema's CHECK constraints refuse
// the rest.
func encodeEvents(b *sink.Batch, loadedAt time.Time) ([][]any, error) {
	loaded := timestamp(loadedAt)
	rows := make([][]any, len(b.Events))
	for i := range b.Events {
		e := &b.Events[i]
		if y := e.OccurredAt.UTC().Year(); y < 1 || y > 9999 {
			return nil, sink.Refused("event", e.ID, "occurred_at %s is outside years 1 to 9999", e.OccurredAt)
		}
		v, err := sink.CheckEvent(e)
		if err != nil {
			return nil, err
		}
		rows[i] = []any{
			e.ID, e.RulesVersion, e.Site, e.DeviceSerial, e.UserID, v.PersonID,
			timestamp(e.OccurredAt), e.DeviceTime, e.TimeZone, e.Direction, int64(e.State), int64(e.VerifyMode),
			e.WorkDate, v.Flags,
			e.Lineage.RawID, e.Lineage.RawSubject, e.Lineage.RawStream, v.RawSeq, v.CleanSeq,
			e.Lineage.RunID, e.Lineage.CorrelationID, b.ID,
			e.Department, e.RosterVersion, e.Shift, optionalTime(e.ShiftStart), optionalTime(e.ShiftEnd), optionalTime(e.RoundedAt),
			int64(e.LateMinutes), int64(e.EarlyLeaveMinutes), int64(e.OvertimeMinutes), e.ClockOffsetMS,
			loaded,
		}
	}
	return rows, nil
}

// optionalTime is NULL for a nil instant, else its text form.
func optionalTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return timestamp(*t)
}

// encodeRecords turns the records of group g of b into INSERT arguments
// in insertRecordsSQL order (g.Columns(), then loaded_at). Fields go as the
// JSON object they travelled as (or {}), the payload byte for byte;
// json_valid checks both. A typed table's columns take the record's fields
// converted to their types: text for strings, instants (timeLayout) and
// dates (YYYY-MM-DD), integers for whole numbers and booleans (0 or 1),
// reals for numbers, NULL where a field is absent.
func encodeRecords(b *sink.Batch, g sink.RecordGroup, loadedAt time.Time) ([][]any, error) {
	loaded := timestamp(loadedAt)
	rows := make([][]any, len(g.Records))
	var typed []recordtable.Value
	for n, i := range g.Records {
		r := &b.Records[i]
		var occurred any
		if r.OccurredAt != nil {
			if y := r.OccurredAt.UTC().Year(); y < 1 || y > 9999 {
				return nil, sink.Refused("record", r.ID, "occurred_at %s is outside years 1 to 9999", r.OccurredAt)
			}
			occurred = timestamp(*r.OccurredAt)
		}
		var (
			v   sink.RecordValues
			err error
		)
		if v, typed, err = g.Check(r, typed[:0]); err != nil {
			return nil, err
		}
		row := make([]any, 0, len(g.Columns())+1)
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
				var bit int64
				if tv.B {
					bit = 1
				}
				row = append(row, bit)
			case recordtable.Time:
				if y := tv.T.UTC().Year(); y < 1 || y > 9999 {
					return nil, sink.Refused("record", r.ID, "field %s: %s is outside years 1 to 9999", c.Name, tv.T)
				}
				row = append(row, timestamp(tv.T))
			case recordtable.Date:
				row = append(row, tv.T.Format(time.DateOnly))
			}
		}
		rows[n] = append(row, string(v.Fields), string(r.Payload),
			r.Lineage.RawID, r.Lineage.RawSubject, r.Lineage.RawStream, v.RawSeq, v.CleanSeq,
			r.Lineage.RunID, r.Lineage.CorrelationID, b.ID, loaded)
	}
	return rows, nil
}
