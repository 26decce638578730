package sqlite

import (
	"errors"
	"time"

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
// in insertRecordsSQL order (g.Columns(), then loaded_at; sink.RecordArgs):
// text for the JSON, instants (timeLayout) and dates, integers for whole
// numbers and booleans (the driver binds 0 or 1), reals for numbers.
// json_valid checks the fields and the payload.
func encodeRecords(b *sink.Batch, g sink.RecordGroup, loadedAt time.Time) ([][]any, error) {
	return sink.RecordArgs(b, g, sqlArgs, timestamp(loadedAt))
}

// sqlArgs passes instants as timeLayout text within years 1 to 9999, and
// JSON as text (a STRICT TEXT column refuses a blob).
var sqlArgs = sink.SQLArgs{
	Instant: func(t time.Time) (any, error) {
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			return nil, errOutsideYears
		}
		return timestamp(t), nil
	},
	JSON: func(b []byte) any { return string(b) },
}

var errOutsideYears = errors.New("is outside years 1 to 9999")
