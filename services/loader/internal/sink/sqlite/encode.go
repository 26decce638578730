package sqlite

import (
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
// insertEventsSQL order. A value that cannot be stored faithfully is a
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
		flags, err := sink.JoinFlags(e.Flags)
		if err != nil {
			return nil, sink.Refused("event", e.ID, "%v", err)
		}
		rawSeq, err := sink.Seq(e.Lineage.RawSequence)
		if err != nil {
			return nil, sink.Refused("event", e.ID, "lineage.raw_sequence: %v", err)
		}
		cleanSeq, err := sink.Seq(e.Seq)
		if err != nil {
			return nil, sink.Refused("event", e.ID, "clean sequence: %v", err)
		}
		var personID any
		if e.PersonID != "" {
			personID = e.PersonID
		}
		rows[i] = []any{
			e.ID, e.RulesVersion, e.Site, e.DeviceSerial, e.UserID, personID,
			timestamp(e.OccurredAt), e.DeviceTime, e.TimeZone, e.Direction, int64(e.State), int64(e.VerifyMode),
			e.WorkDate, flags,
			e.Lineage.RawID, e.Lineage.RawSubject, e.Lineage.RawStream, rawSeq, cleanSeq,
			e.Lineage.RunID, e.Lineage.CorrelationID, b.ID, loaded,
			e.Department, e.RosterVersion, e.Shift, optionalTime(e.ShiftStart), optionalTime(e.ShiftEnd), optionalTime(e.RoundedAt),
			int64(e.LateMinutes), int64(e.EarlyLeaveMinutes), int64(e.OvertimeMinutes), e.ClockOffsetMS,
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

// encodeRecords turns the records of b into INSERT arguments in
// insertRecordsSQL order. Fields go as the JSON object they travelled as
// (or {}), the payload byte for byte; json_valid checks both.
func encodeRecords(b *sink.Batch, loadedAt time.Time) ([][]any, error) {
	loaded := timestamp(loadedAt)
	rows := make([][]any, len(b.Records))
	for i := range b.Records {
		r := &b.Records[i]
		var occurred any
		if r.OccurredAt != nil {
			if y := r.OccurredAt.UTC().Year(); y < 1 || y > 9999 {
				return nil, sink.Refused("record", r.ID, "occurred_at %s is outside years 1 to 9999", r.OccurredAt)
			}
			occurred = timestamp(*r.OccurredAt)
		}
		fields, err := r.FieldsJSON()
		if err != nil {
			return nil, sink.Refused("record", r.ID, "%v", err)
		}
		rawSeq, err := sink.Seq(r.Lineage.RawSequence)
		if err != nil {
			return nil, sink.Refused("record", r.ID, "lineage.raw_sequence: %v", err)
		}
		cleanSeq, err := sink.Seq(r.Seq)
		if err != nil {
			return nil, sink.Refused("record", r.ID, "clean sequence: %v", err)
		}
		rows[i] = []any{
			r.ID, r.RulesVersion, r.Source, r.NaturalKey, occurred, string(fields), string(r.Payload),
			r.Lineage.RawID, r.Lineage.RawSubject, r.Lineage.RawStream, rawSeq, cleanSeq,
			r.Lineage.RunID, r.Lineage.CorrelationID, b.ID, loaded,
		}
	}
	return rows, nil
}
