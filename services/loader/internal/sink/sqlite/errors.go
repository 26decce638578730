package sqlite

import (
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/proto"
)

// classify wraps err in its fault class, once, at this edge. SQLite
// refusing the data itself is permanent (reason proto.ReasonRejectedBySink),
// so that splitting the batch isolates the row; anything else (a lock held
// by another process past the busy timeout, I/O errors, a full disk, a
// closed database, a cancelled context) is transient. An error already
// classified keeps its class.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	if refusedData(err) {
		return fault.NewPermanent(proto.ReasonRejectedBySink, err)
	}
	return fault.NewTransient(err)
}

// refusedData reports whether err is SQLite refusing a value, by primary
// result code: SQLITE_CONSTRAINT (CHECK, NOT NULL, a STRICT column's
// datatype, a primary key), SQLITE_MISMATCH (datatype mismatch) or
// SQLITE_TOOBIG (a value over the length limit). SQLITE_BUSY and
// SQLITE_LOCKED, like every other code, are transient.
func refusedData(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG:
		return true
	}
	return false
}
