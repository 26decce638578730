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

// encodeEvents checks the events of b and returns them as rows in
// eventColumns order, ordered by id. A value that cannot be stored
// faithfully is a permanent error naming the event.
func encodeEvents(b *sink.Batch) (rows, error) {
	type checked struct {
		sink.EventValues
		workDate time.Time
	}
	order := sink.OrderEvents(b.Events)
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
	return rows{n: len(order), encode: func(d *copyData, n int) {
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
		d.text(e.Lineage.RawID)
		d.text(e.Lineage.RawSubject)
		d.text(e.Lineage.RawStream)
		d.int8(c.RawSeq)
		d.int8(c.CleanSeq)
		d.text(e.Lineage.RunID)
		d.text(e.Lineage.CorrelationID)
		d.text(b.ID)
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
	}}, nil
}

// encodeRecords is encodeEvents for the records of b, in recordColumns
// order. Fields go as the JSON object they travelled as (or {}), the
// payload byte for byte; the server checks that both are JSON.
func encodeRecords(b *sink.Batch) (rows, error) {
	order := sink.OrderByID(len(b.Records), func(i int) string { return b.Records[i].ID })
	cs := make([]sink.RecordValues, len(b.Records))
	for i := range b.Records {
		v, err := sink.CheckRecord(&b.Records[i])
		if err != nil {
			return rows{}, err
		}
		cs[i] = v
	}
	return rows{n: len(order), encode: func(d *copyData, n int) {
		i := order[n]
		r, c := &b.Records[i], &cs[i]
		d.row(len(recordColumns))
		d.text(r.ID)
		d.text(r.RulesVersion)
		d.text(r.Source)
		d.text(r.NaturalKey)
		d.optTimestamptz(r.OccurredAt)
		d.jsonb(c.Fields)
		d.bytes(r.Payload)
		d.text(r.Lineage.RawID)
		d.text(r.Lineage.RawSubject)
		d.text(r.Lineage.RawStream)
		d.int8(c.RawSeq)
		d.int8(c.CleanSeq)
		d.text(r.Lineage.RunID)
		d.text(r.Lineage.CorrelationID)
		d.text(b.ID)
	}}, nil
}
