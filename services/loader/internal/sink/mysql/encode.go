package mysql

import (
	"errors"
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

// rows are the rows of one statement, encoded one at a time as the
// statement sends them: row(i, buf) returns row i, appended to buf[:0] or
// in storage of its own; the caller may reuse buf once it has sent the
// row. A source is used by one goroutine at a time.
type rows struct {
	n   int
	row func(i int, buf []any) ([]any, error)
}

// rowsOf is the source of rows encoded beforehand, sent in the order of
// order.
func rowsOf(all [][]any, order []int) rows {
	return rows{n: len(all), row: func(i int, _ []any) ([]any, error) { return all[order[i]], nil }}
}

// all returns every row (for INSERT statements, which bind them all).
func (r rows) all() ([][]any, error) {
	out := make([][]any, r.n)
	for i := range out {
		row, err := r.row(i, nil)
		if err != nil {
			return nil, err
		}
		out[i] = row
	}
	return out, nil
}

// recordRows is the source of the records of group g of b, in
// sink.OrderRecords order, each encoded as it is sent in the order of
// g.Columns() (sink.RecordRow), instants as UTC DATETIME(6): on the LOAD
// DATA path the encoding overlaps the server's work instead of preceding
// the transaction. A record the database cannot hold ends the statement
// with a permanent error naming it. The json_valid CHECKs test the fields
// and the payload.
func recordRows(b *sink.Batch, g sink.RecordGroup) rows {
	order := sink.OrderRecords(len(g.Records), func(n int) *sink.Record { return &b.Records[g.Records[n]] })
	var typed []recordtable.Value
	return rows{n: len(g.Records), row: func(i int, buf []any) ([]any, error) {
		row, t, err := sink.RecordRow(buf[:0], &b.Records[g.Records[order[i]]], b.ID, g, sqlArgs, typed)
		typed = t
		return row, err
	}}
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
