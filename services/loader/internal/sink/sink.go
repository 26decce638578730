// Package sink defines what the loader needs from a database: write one
// micro-batch of clean attendance events in one transaction, idempotently.
// Each database has a package of its own (postgres, sqlite) that implements
// Sink.
package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/punchflow/punchflow/proto"
)

// Event is a clean attendance event with its position in the CLEAN stream.
type Event struct {
	proto.AttendanceEvent
	// Seq is the CLEAN stream sequence the event was delivered from.
	Seq uint64
}

// Batch is one micro-batch: the unit of one database transaction.
type Batch struct {
	ID       string // unique per attempt, for the batch status table and lineage
	Sink     string // the sink's configured name
	Events   []Event
	FirstSeq uint64
	LastSeq  uint64
	Started  time.Time
}

// Result says what a committed batch did.
type Result struct {
	// Inserted rows are new; Duplicates were already present (a replay or a
	// redelivery) and were left untouched.
	Inserted   int
	Duplicates int
}

// Sink writes batches to one database.
//
// Write inserts every event of b whose id is not yet present, records b in the
// batch status table with outcome "committed", and commits, all in one
// transaction: either all of it is durable or none. Calling Write again with
// the same events inserts nothing new (Result.Duplicates counts them). When
// the transaction fails Write records b with outcome "failed" and the error
// (best effort, outside the failed transaction) and returns an error wrapped
// by fault: permanent (fault.Permanent, reason proto.ReasonRejectedBySink)
// when the database refused the data itself, so that splitting the batch
// isolates the bad row, and transient otherwise (connection lost, deadlock,
// serialization failure, timeout).
//
// Ping reports whether the database is reachable, for readiness. Close
// releases the pool. Implementations are safe for concurrent use.
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
	if len(b.Events) == 0 {
		return fmt.Errorf("batch %s is empty", b.ID)
	}
	return nil
}

// Outcomes recorded in the batch status table.
const (
	OutcomeCommitted = "committed"
	OutcomeFailed    = "failed"
)
