package sink

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/punchflow/punchflow/services/loader/internal/recordtable"
)

// EventColumns are the columns every sink writes to attendance_events, in
// the order of the rows its encoder makes (the database's default fills
// loaded_at, except in SQLite, which appends it).
var EventColumns = []string{
	"id", "rules_version", "site", "device_serial", "user_id", "person_id",
	"occurred_at", "device_time", "time_zone", "direction", "state", "verify_mode",
	"work_date", "flags",
	"raw_id", "raw_subject", "raw_stream", "raw_sequence", "clean_sequence",
	"run_id", "correlation_id", "batch_id",
	"department", "roster_version", "shift", "shift_start", "shift_end", "rounded_at",
	"late_minutes", "early_leave_minutes", "overtime_minutes", "clock_offset_ms",
}

// RecordColumns are the columns every sink writes to business_records, as
// EventColumns are for events.
var RecordColumns = []string{
	"id", "rules_version", "source", "natural_key", "occurred_at", "fields", "payload",
	"raw_id", "raw_subject", "raw_stream", "raw_sequence", "clean_sequence",
	"run_id", "correlation_id", "batch_id",
}

// EventValues are the column values every sink derives from an event the
// same way.
type EventValues struct {
	Flags            string // comma-separated
	RawSeq, CleanSeq int64
	PersonID         any // nil (NULL) when the roster did not know the user
}

// CheckEvent checks what every sink stores of e the same way and returns
// those values: the flags fit a comma-separated column, the sequences a
// BIGINT, and state, verify mode and minutes a 32-bit INTEGER. A value that
// does not is a permanent error naming the event. Each sink checks its own
// dialect's limits (instants, dates) besides.
func CheckEvent(e *Event) (EventValues, error) {
	flags, err := JoinFlags(e.Flags)
	if err != nil {
		return EventValues{}, Refused("event", e.ID, "%v", err)
	}
	rawSeq, err := Seq(e.Lineage.RawSequence)
	if err != nil {
		return EventValues{}, Refused("event", e.ID, "lineage.raw_sequence: %v", err)
	}
	cleanSeq, err := Seq(e.Seq)
	if err != nil {
		return EventValues{}, Refused("event", e.ID, "clean sequence: %v", err)
	}
	for _, v := range []int{e.State, e.VerifyMode, e.LateMinutes, e.EarlyLeaveMinutes, e.OvertimeMinutes} {
		if v < math.MinInt32 || v > math.MaxInt32 {
			return EventValues{}, Refused("event", e.ID, "%d (state, verify mode or minutes) does not fit in an INTEGER", v)
		}
	}
	v := EventValues{Flags: flags, RawSeq: rawSeq, CleanSeq: cleanSeq}
	if e.PersonID != "" {
		v.PersonID = e.PersonID
	}
	return v, nil
}

// RecordValues are the column values every sink derives from a record the
// same way.
type RecordValues struct {
	Fields           []byte // the JSON object the fields travelled as, or {}
	RawSeq, CleanSeq int64
}

// CheckRecord is CheckEvent for a business record.
func CheckRecord(r *Record) (RecordValues, error) {
	rawSeq, err := Seq(r.Lineage.RawSequence)
	if err != nil {
		return RecordValues{}, Refused("record", r.ID, "lineage.raw_sequence: %v", err)
	}
	cleanSeq, err := Seq(r.Seq)
	if err != nil {
		return RecordValues{}, Refused("record", r.ID, "clean sequence: %v", err)
	}
	fields, err := r.FieldsJSON()
	if err != nil {
		return RecordValues{}, Refused("record", r.ID, "%v", err)
	}
	return RecordValues{Fields: fields, RawSeq: rawSeq, CleanSeq: cleanSeq}, nil
}

// OrderEvents returns the positions of events ordered by day (work date,
// site, user id, as daily_attendance's key and attendance_events' day
// index), then by id, then by position, so that the first occurrence of an
// id comes first. Sinks write rows in this order. It is a function of the
// id (an id names one event, so one day): every transaction takes its rows
// in the same order, so concurrent writers of overlapping batches wait
// instead of deadlocking; and the index entries a batch adds for a day land
// next to each other.
func OrderEvents(events []Event) []int {
	order := make([]int, len(events))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		x, y := &events[a], &events[b]
		return cmp.Or(strings.Compare(x.WorkDate, y.WorkDate), strings.Compare(x.Site, y.Site),
			strings.Compare(x.UserID, y.UserID), strings.Compare(x.ID, y.ID), cmp.Compare(a, b))
	})
	return order
}

// OrderRecords returns the positions 0 to n-1 of records (record(i) is the
// i-th) ordered by natural key, then id, then position: like OrderEvents, a
// function of the id (a record's natural key is part of what its id
// hashes), so every transaction takes its rows in the same order; and the
// natural key index, which sources mostly fill in ascending order, takes
// each batch's keys in order too.
func OrderRecords(n int, record func(i int) *Record) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		x, y := record(a), record(b)
		return cmp.Or(strings.Compare(x.NaturalKey, y.NaturalKey), strings.Compare(x.ID, y.ID), cmp.Compare(a, b))
	})
	return order
}

// RecordGroup is the records of a batch that go to one table: the typed
// table of their source, or business_records (Table nil).
type RecordGroup struct {
	Table   *recordtable.Table
	Records []int // positions in Batch.Records, in batch order
}

// Name is the group's table.
func (g RecordGroup) Name() string {
	if g.Table == nil {
		return BusinessRecords
	}
	return g.Table.Name
}

// BusinessRecords is the table of the records of sources without a typed
// table.
const BusinessRecords = "business_records"

// GroupRecords splits the records of b by table: business_records first,
// then the typed tables of set by name.
func GroupRecords(b *Batch, set recordtable.Set) []RecordGroup {
	var (
		generic RecordGroup
		typed   = map[string]*RecordGroup{}
	)
	for i := range b.Records {
		t := set[b.Records[i].Source]
		if t == nil {
			generic.Records = append(generic.Records, i)
			continue
		}
		g, ok := typed[t.Name]
		if !ok {
			g = &RecordGroup{Table: t}
			typed[t.Name] = g
		}
		g.Records = append(g.Records, i)
	}
	var out []RecordGroup
	if len(generic.Records) > 0 {
		out = append(out, generic)
	}
	for _, name := range slices.Sorted(maps.Keys(typed)) {
		out = append(out, *typed[name])
	}
	return out
}

// ColumnList joins columns for a statement, each quoted with quote (a
// double quote, or MySQL's backquote): a typed column takes its field's
// name, which may be a reserved word (order, key, user). Column names are
// identifiers without quotes (recordtable), so there is nothing to escape.
func ColumnList(columns []string, quote string) string {
	var b strings.Builder
	for i, c := range columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote + c + quote)
	}
	return b.String()
}

// Columns are the columns a batch writes to the group's table, in the
// order of the rows its encoders make: RecordColumns for business_records;
// for a typed table the same without source, with the typed columns after
// occurred_at.
func (g RecordGroup) Columns() []string {
	if g.Table == nil {
		return RecordColumns
	}
	out := make([]string, 0, len(RecordColumns)+len(g.Table.Columns)-1)
	out = append(out, "id", "rules_version", "natural_key", "occurred_at")
	for _, c := range g.Table.Columns {
		out = append(out, c.Name)
	}
	return append(out, RecordColumns[5:]...)
}

// Check is CheckRecord for a record of the group, r: for a typed table it
// also appends the record's typed column values (r.Typed, or else read from
// the record's fields) to typed. A record whose fields do not fit its table
// is a permanent error naming the record.
func (g RecordGroup) Check(r *Record, typed []recordtable.Value) (RecordValues, []recordtable.Value, error) {
	v, err := CheckRecord(r)
	if err != nil || g.Table == nil {
		return v, typed, err
	}
	typed, err = g.Typed(r, v.Fields, typed)
	return v, typed, err
}

// Typed appends the typed column values of r, a record of the group's typed
// table, to dst: r.Typed when the loader decoded them, else read from
// fields, the record's fields object (RecordValues.Fields).
func (g RecordGroup) Typed(r *Record, fields []byte, dst []recordtable.Value) ([]recordtable.Value, error) {
	if len(r.Typed) == len(g.Table.Columns) && r.Typed != nil {
		return append(dst, r.Typed...), nil
	}
	out, err := g.Table.Values(dst, fields)
	if err != nil {
		return dst, Refused("record", r.ID, "%v", err)
	}
	return out, nil
}

// Reprocessed returns the raw ids and ids of the events of b that the
// transformer marked reprocessed: the punches of which an earlier version,
// on another work date perhaps, may be loaded already. A sink looks those
// versions up, by raw id and under another id, and recomputes their days
// too (see daily.Counted). Most batches have none.
func Reprocessed(b *Batch) (rawIDs, ids []string) {
	for i := range b.Events {
		if e := &b.Events[i]; e.Reprocessed {
			rawIDs, ids = append(rawIDs, e.Lineage.RawID), append(ids, e.ID)
		}
	}
	return rawIDs, ids
}

// SQLArgs says how a database/sql sink passes the values RecordArgs cannot
// pass as they are.
type SQLArgs struct {
	// Instant converts occurred_at or a time field, or says why the
	// column cannot hold it (for example "is outside years 1 to 9999").
	Instant func(time.Time) (any, error)
	// JSON converts the fields object and the payload.
	JSON func([]byte) any
}

// RecordArgs returns the records of group g of b as statement arguments
// (RecordRow), one row each, in g's order.
func RecordArgs(b *Batch, g RecordGroup, conv SQLArgs, extra ...any) ([][]any, error) {
	rows := make([][]any, len(g.Records))
	width := len(g.Columns()) + len(extra)
	var (
		typed []recordtable.Value
		err   error
	)
	for n, i := range g.Records {
		if rows[n], typed, err = RecordRow(make([]any, 0, width), &b.Records[i], b.ID, g, conv, typed, extra...); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// RecordRow appends to dst the statement arguments of record r of group g
// of batch batchID, in the order of g.Columns(), followed by extra: the
// fields as the JSON object they travelled as (or {}), the payload byte
// for byte, a typed table's columns converted to their types (strings,
// whole numbers, doubles, booleans, instants and dates as YYYY-MM-DD),
// NULL where a field is absent. typed is scratch space for the typed
// values, returned for the next call. A value the database cannot hold
// refuses the batch with a permanent error naming the record.
func RecordRow(dst []any, r *Record, batchID string, g RecordGroup, conv SQLArgs, typed []recordtable.Value, extra ...any) ([]any, []recordtable.Value, error) {
	var occurred any
	if r.OccurredAt != nil {
		var err error
		if occurred, err = conv.Instant(*r.OccurredAt); err != nil {
			return nil, typed, Refused("record", r.ID, "occurred_at %s %v", r.OccurredAt, err)
		}
	}
	v, typed, err := g.Check(r, typed[:0])
	if err != nil {
		return nil, typed, err
	}
	row := append(dst, r.ID, r.RulesVersion)
	if g.Table == nil {
		row = append(row, r.Source)
	}
	row = append(row, r.NaturalKey, occurred)
	for k, tv := range typed {
		arg, err := typedArg(g.Table.Columns[k].Type, tv, conv)
		if err != nil {
			return nil, typed, Refused("record", r.ID, "field %s: %s %v", g.Table.Columns[k].Name, tv.T, err)
		}
		row = append(row, arg)
	}
	row = append(row, conv.JSON(v.Fields), conv.JSON(r.Payload),
		r.Lineage.RawID, r.Lineage.RawSubject, r.Lineage.RawStream, v.RawSeq, v.CleanSeq,
		r.Lineage.RunID, r.Lineage.CorrelationID, batchID)
	return append(row, extra...), typed, nil
}

// typedArg is the argument of typed value v of a column of type t; only an
// instant can fail.
func typedArg(t recordtable.Type, v recordtable.Value, conv SQLArgs) (any, error) {
	if v.Null {
		return nil, nil
	}
	switch t {
	case recordtable.String:
		return v.S, nil
	case recordtable.Int:
		return v.I, nil
	case recordtable.Number:
		return v.F, nil
	case recordtable.Bool:
		return v.B, nil
	case recordtable.Time:
		return conv.Instant(v.T)
	case recordtable.Date:
		return v.T.Format(time.DateOnly), nil
	}
	return nil, fmt.Errorf("has unknown type %q", t)
}
