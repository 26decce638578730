package postgres

import (
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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

// rows are a batch's events or records as COPY rows: checked when made,
// and ordered by id, but each row's values built only when COPY asks for
// them, so that building them overlaps with the server's work on the rows
// already sent.
type rows struct {
	order []int                        // the rows by id
	fill  func(dst []any, i int) []any // appends the values of row i
}

// Len is the number of rows.
func (r *rows) Len() int { return len(r.order) }

// source returns a new iterator over the rows, in order, for CopyFrom.
func (r *rows) source() pgx.CopyFromSource { return &rowSource{r: r, pos: -1} }

// rowSource is a pgx.CopyFromSource; the values Values returns are valid
// until the next call of Values (pgx encodes them at once).
type rowSource struct {
	r   *rows
	pos int
	row []any
}

func (s *rowSource) Next() bool { s.pos++; return s.pos < len(s.r.order) }

func (s *rowSource) Values() ([]any, error) {
	s.row = s.r.fill(s.row[:0], s.r.order[s.pos])
	return s.row, nil
}

func (s *rowSource) Err() error { return nil }

// encodeEvents checks the events of b and returns them as rows in
// eventColumns order. A value that cannot be stored faithfully is a
// permanent error naming the event.
func encodeEvents(b *sink.Batch) (*rows, error) {
	type checked struct {
		sink.EventValues
		workDate time.Time
	}
	cs := make([]checked, len(b.Events))
	for i := range b.Events {
		e := &b.Events[i]
		workDate, err := time.Parse(time.DateOnly, e.WorkDate)
		if err != nil {
			return nil, sink.Refused("event", e.ID, "work_date %q is not a date as YYYY-MM-DD", e.WorkDate)
		}
		v, err := sink.CheckEvent(e)
		if err != nil {
			return nil, err
		}
		cs[i] = checked{v, workDate}
	}
	return &rows{
		order: sink.OrderByID(len(b.Events), func(i int) string { return b.Events[i].ID }),
		fill: func(dst []any, i int) []any {
			e, c := &b.Events[i], &cs[i]
			return append(dst,
				e.ID, e.RulesVersion, e.Site, e.DeviceSerial, e.UserID, c.PersonID,
				e.OccurredAt, e.DeviceTime, e.TimeZone, e.Direction, e.State, e.VerifyMode,
				c.workDate, c.Flags,
				e.Lineage.RawID, e.Lineage.RawSubject, e.Lineage.RawStream, c.RawSeq, c.CleanSeq,
				e.Lineage.RunID, e.Lineage.CorrelationID, b.ID,
				e.Department, e.RosterVersion, e.Shift, optionalTime(e.ShiftStart), optionalTime(e.ShiftEnd), optionalTime(e.RoundedAt),
				e.LateMinutes, e.EarlyLeaveMinutes, e.OvertimeMinutes, e.ClockOffsetMS,
			)
		},
	}, nil
}

// encodeRecords is encodeEvents for the records of b, in recordColumns
// order. Fields go as the JSON object they travelled as (or {}), the
// payload byte for byte; the server checks that both are JSON.
func encodeRecords(b *sink.Batch) (*rows, error) {
	cs := make([]sink.RecordValues, len(b.Records))
	for i := range b.Records {
		v, err := sink.CheckRecord(&b.Records[i])
		if err != nil {
			return nil, err
		}
		cs[i] = v
	}
	return &rows{
		order: sink.OrderByID(len(b.Records), func(i int) string { return b.Records[i].ID }),
		fill: func(dst []any, i int) []any {
			r, c := &b.Records[i], &cs[i]
			var occurred any
			if r.OccurredAt != nil {
				occurred = *r.OccurredAt
			}
			return append(dst,
				r.ID, r.RulesVersion, r.Source, r.NaturalKey, occurred, c.Fields, []byte(r.Payload),
				r.Lineage.RawID, r.Lineage.RawSubject, r.Lineage.RawStream, c.RawSeq, c.CleanSeq,
				r.Lineage.RunID, r.Lineage.CorrelationID, b.ID,
			)
		},
	}, nil
}

// optionalTime is NULL for a nil instant.
func optionalTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}
