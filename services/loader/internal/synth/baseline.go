package synth

import (
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/recordtable"
)

// EventRow returns the values of e as a plain pgx CopyFrom into
// attendance_events takes them, in the order of sink.EventColumns, with
// CLEAN sequence seq and batch id batch: the benchmarks' baseline, which
// loads the same rows without the sink.
func EventRow(e proto.AttendanceEvent, seq uint64, batch string) []any {
	wd, _ := time.Parse(time.DateOnly, e.WorkDate)
	var person any
	if e.PersonID != "" {
		person = e.PersonID
	}
	opt := func(t *time.Time) any {
		if t == nil {
			return nil
		}
		return *t
	}
	return []any{e.ID, e.RulesVersion, e.Site, e.DeviceSerial, e.UserID, person, e.OccurredAt, e.DeviceTime, e.TimeZone,
		e.Direction, e.State, e.VerifyMode, wd, strings.Join(e.Flags, ","), e.Lineage.RawID, e.Lineage.RawSubject,
		e.Lineage.RawStream, int64(e.Lineage.RawSequence), int64(seq), e.Lineage.RunID, e.Lineage.CorrelationID, batch,
		e.Department, e.RosterVersion, e.Shift, opt(e.ShiftStart), opt(e.ShiftEnd), opt(e.RoundedAt),
		e.LateMinutes, e.EarlyLeaveMinutes, e.OvertimeMinutes, e.ClockOffsetMS}
}

// RecordTypes is the records section of a rules file that types the fields
// of the records Record makes (see package recordtable): with it the
// loader loads them into records_<source>.
const RecordTypes = `records:
  orders:
    fields:
      order_id:     {path: order_id, type: string}
      amount_cents: {path: amount_cents, type: int}
      paid:         {path: paid, type: bool}
      created:      {path: created, type: time}
`

// RecordTables is RecordTypes parsed: the typed table of the orders.
func RecordTables() recordtable.Set {
	set, err := recordtable.Parse([]byte(RecordTypes))
	if err != nil {
		panic(fmt.Sprintf("synth.RecordTypes: %v", err))
	}
	return set
}

// TypedRecordRow is EventRow for a record of the typed table RecordTypes
// declares: the columns of sink.RecordGroup.Columns, its typed columns in
// name order (amount_cents, created, order_id, paid).
func TypedRecordRow(r proto.CleanRecord, seq uint64, batch string) []any {
	fields, _ := json.Marshal(r.Fields)
	created, _ := time.Parse(time.RFC3339, r.Fields["created"].(string))
	return []any{r.ID, r.RulesVersion, r.NaturalKey, *r.OccurredAt,
		int64(r.Fields["amount_cents"].(float64)), created, r.Fields["order_id"].(string), r.Fields["paid"].(bool),
		fields, []byte(r.Payload),
		r.Lineage.RawID, r.Lineage.RawSubject, r.Lineage.RawStream, int64(r.Lineage.RawSequence), int64(seq),
		r.Lineage.RunID, r.Lineage.CorrelationID, batch}
}
