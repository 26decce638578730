package postgres

import (
	"strings"
	"time"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/recordtable"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// eventColumns are the columns a batch writes to attendance_events (see
// sink.EventColumns); loaded_at takes the transaction's time from its
// default.
var (
	eventColumns    = sink.EventColumns
	eventColumnList = strings.Join(eventColumns, ", ")
)

// encodeEvents checks the events of b and returns them as rows in
// eventColumns order, in the order order gives (sink.OrderEvents). A value
// that cannot be stored faithfully is a permanent error naming the event.
func encodeEvents(b *sink.Batch, order []int) (rows, error) {
	type checked struct {
		sink.EventValues
		workDate time.Time
	}
	cs := make([]checked, len(b.Events))
	for i := range b.Events {
		e := &b.Events[i]
		workDate, err := time.Parse(time.DateOnly, e.WorkDate)
		if err != nil {
			return rows{}, sink.Refused("event", e.ID, "work_date %q is not a date as YYYY-MM-DD", e.WorkDate)
		}
		v, err := sink.CheckEvent(e)
		if err != nil {
			return rows{}, err
		}
		cs[i] = checked{v, workDate}
	}
	return rows{n: len(order), encode: func(d *copyData, n int) error {
		i := order[n]
		e, c := &b.Events[i], &cs[i]
		d.row(len(eventColumns))
		d.text(e.ID)
		d.text(e.RulesVersion)
		d.text(e.Site)
		d.text(e.DeviceSerial)
		d.text(e.UserID)
		d.nullText(e.PersonID)
		d.timestamptz(e.OccurredAt)
		d.text(e.DeviceTime)
		d.text(e.TimeZone)
		d.text(e.Direction)
		d.int4(int32(e.State))
		d.int4(int32(e.VerifyMode))
		d.date(c.workDate)
		d.text(c.Flags)
		d.lineage(&e.Lineage, c.RawSeq, c.CleanSeq, b.ID)
		d.text(e.Department)
		d.text(e.RosterVersion)
		d.text(e.Shift)
		d.optTimestamptz(e.ShiftStart)
		d.optTimestamptz(e.ShiftEnd)
		d.optTimestamptz(e.RoundedAt)
		d.int4(int32(e.LateMinutes))
		d.int4(int32(e.EarlyLeaveMinutes))
		d.int4(int32(e.OvertimeMinutes))
		d.int8(e.ClockOffsetMS)
		return nil
	}}, nil
}

// encodeRecords is encodeEvents for the records of group g of b, in the
// order of g.Columns(). Fields go as the JSON object they travelled as (or
// {}), the payload byte for byte; the server checks that both are JSON. A
// typed table's columns take the record's fields converted to their types
// (as the worker decoded them, Record.Typed, or else here as COPY reads
// the rows: a record whose fields do not fit then ends the COPY with a
// permanent error naming it), NULL where a field is absent.
func encodeRecords(b *sink.Batch, g sink.RecordGroup) (rows, error) {
	order := sink.OrderRecords(len(g.Records), func(n int) *sink.Record { return &b.Records[g.Records[n]] })
	cs := make([]sink.RecordValues, len(g.Records))
	for n, i := range g.Records {
		var err error
		if cs[n], err = sink.CheckRecord(&b.Records[i]); err != nil {
			return rows{}, err
		}
	}
	columns := len(g.Columns())
	var typed []recordtable.Value // the typed values of the row being encoded
	return rows{n: len(order), encode: func(d *copyData, k int) error {
		n := order[k]
		r, c := &b.Records[g.Records[n]], &cs[n]
		if g.Table != nil {
			var err error
			if typed, err = g.Typed(r, c.Fields, typed[:0]); err != nil {
				return err
			}
		}
		d.row(columns)
		d.text(r.ID)
		d.text(r.RulesVersion)
		if g.Table == nil {
			d.text(r.Source)
		}
		d.text(r.NaturalKey)
		d.optTimestamptz(r.OccurredAt)
		for i, v := range typed {
			d.value(g.Table.Columns[i].Type, v)
		}
		d.jsonb(c.Fields)
		d.bytes(r.Payload)
		d.lineage(&r.Lineage, c.RawSeq, c.CleanSeq, b.ID)
		return nil
	}}, nil
}

// lineage appends the lineage columns every row ends with or carries
// (raw_id to batch_id, as sink.EventColumns and sink.RecordColumns order
// them).
func (d *copyData) lineage(l *proto.Lineage, rawSeq, cleanSeq int64, batchID string) {
	d.text(l.RawID)
	d.text(l.RawSubject)
	d.text(l.RawStream)
	d.int8(rawSeq)
	d.int8(cleanSeq)
	d.text(l.RunID)
	d.text(l.CorrelationID)
	d.text(batchID)
}
