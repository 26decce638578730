package mysql

import (
	"errors"
	"time"

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
// of g.Columns() (sink.RecordArgs), instants as UTC DATETIME(6). The
// json_valid CHECKs test the fields and the payload.
func encodeRecords(b *sink.Batch, g sink.RecordGroup) ([][]any, error) {
	return sink.RecordArgs(b, g, sqlArgs)
}

// sqlArgs passes instants as UTC times within DATETIME's years, and JSON
// as bytes.
var sqlArgs = sink.SQLArgs{
	Instant: func(t time.Time) (any, error) {
		at := t.UTC()
		if at.Before(minTime) || at.After(maxTime) {
			return nil, errOutsideDatetime
		}
		return at, nil
	},
	JSON: func(b []byte) any { return b },
}

var errOutsideDatetime = errors.New("is outside years 1000 to 9999")
