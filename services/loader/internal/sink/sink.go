// Package sink defines what the loader needs from a database: write one
// micro-batch of clean attendance events and business records in one
// transaction, idempotently. Each database has a package of its own
// (postgres, mysql, sqlite) that implements Sink.
//
// Every implementation holds the same logical schema (see package migrate):
//
//   - attendance_events is the punch table: one row per clean event id,
//     with its lineage (raw id, rules version, stream sequences, batch id).
//   - daily_attendance holds one row per (site, user_id, work_date): first
//     in, last out, worked and late minutes, punch count and double punches,
//     as computed by package daily. A batch brings up to date, inside its
//     own transaction, exactly the days that the rows it newly inserted
//     belong to, and the days of the other versions of the punches the
//     transformer marked reprocessed (Reprocessed), from the punches of
//     those days in attendance_events that count (daily.Counted: a punch's
//     latest version only); rows a replay finds already present change
//     nothing.
//   - business_records holds one row per clean record id of a source
//     without a typed table: source, natural key and occurrence time as
//     columns, the mapped fields as JSON (values keep their JSON types) and
//     the raw payload unchanged, with lineage. records_<source> holds the
//     records of a source the transformer's rules type (package
//     recordtable): the same, with a column per typed field.
//   - load_batches holds one row per batch attempt, for operators.
package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/recordtable"
)

// Event is a clean attendance event with its position in the CLEAN stream.
type Event struct {
	proto.AttendanceEvent
	// Seq is the CLEAN stream sequence the event was delivered from.
	Seq uint64
}

// Record is a clean business record with its position in the CLEAN stream.
type Record struct {
	proto.CleanRecord
	// RawFields is the record's "fields" object exactly as it travelled, or
	// nil. Sinks store it rather than re-encoding Fields, so that a number
	// keeps every digit (Fields holds numbers as float64).
	RawFields []byte
	// Typed holds, when the record's source has a typed table, the value of
	// each of its columns (recordtable.Table.Values), as the loader decoded
	// them with the message; nil leaves the decoding to the sink.
	Typed []recordtable.Value
	// Seq is the CLEAN stream sequence the record was delivered from.
	Seq uint64
}

// FieldsJSON returns the JSON object a sink stores as the record's fields:
// RawFields when set, else Fields encoded with sorted keys, else "{}" (for
// no fields or a JSON null).
func (r *Record) FieldsJSON() ([]byte, error) {
	raw := bytes.TrimSpace(r.RawFields)
	if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		return raw, nil
	}
	if len(r.Fields) == 0 {
		return []byte("{}"), nil
	}
	b, err := json.Append(nil, r.Fields, json.SortMapKeys)
	if err != nil {
		return nil, fmt.Errorf("record %s: encode fields: %w", r.ID, err)
	}
	return b, nil
}

// Batch is one micro-batch: the unit of one database transaction. It holds
// attendance events, business records or both.
type Batch struct {
	ID       string // unique per attempt, for the batch status table and lineage
	Sink     string // the sink's configured name
	Events   []Event
	Records  []Record
	FirstSeq uint64
	LastSeq  uint64
	Started  time.Time
}

// Len is the number of rows the batch carries, events and records together.
func (b *Batch) Len() int { return len(b.Events) + len(b.Records) }

// Result says what a committed batch did.
type Result struct {
	// Inserted rows are new; Duplicates were already present (a replay or a
	// redelivery) and were left untouched. Both count events and records
	// together.
	Inserted   int
	Duplicates int
	// Days is how many daily_attendance rows the batch recomputed: the days
	// of the events it newly inserted.
	Days int
}

// Sink writes batches to one database.
//
// Write inserts every event and record of b whose id is not yet present,
// recomputes the daily attendance of the days those new events belong to,
// records b in the batch status table with outcome "committed", and commits,
// all in one transaction: either all of it is durable or none. Calling Write
// again with the same events and records inserts nothing new
// (Result.Duplicates counts them) and changes no daily row. When the
// transaction fails Write records b with outcome "failed" and the error
// (best effort, outside the failed transaction) and returns an error wrapped
// by fault: permanent (fault.Permanent, reason proto.ReasonRejectedBySink)
// when the database refused the data itself, so that splitting the batch
// isolates the bad row, and transient otherwise (connection lost, deadlock,
// serialization failure, timeout). A batch that fails Validate is refused
// with a permanent error, reason proto.ReasonInvalid, and not recorded.
//
// Ping reports whether the database is reachable, for readiness. Close
// releases the pool. Implementations are safe for concurrent use, also by
// several processes on one database (replicas), except SQLite, whose file
// belongs to one process.
type Sink interface {
	Write(ctx context.Context, b Batch) (Result, error)
	Ping(ctx context.Context) error
	Close() error
}

// Validate checks a batch before it reaches a database.
func (b *Batch) Validate() error {
	if b.ID == "" || b.Sink == "" {
		return errors.New("batch needs an id and a sink name")
	}
	if b.Len() == 0 {
		return fmt.Errorf("batch %s is empty", b.ID)
	}
	return nil
}

// Outcomes recorded in the batch status table.
const (
	OutcomeCommitted = "committed"
	OutcomeFailed    = "failed"
)
