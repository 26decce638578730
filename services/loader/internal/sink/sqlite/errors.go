package sqlite

import (
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// classify wraps err in its fault class at this edge; see sink.Classify.
func classify(err error) error { return sink.Classify(err, refusedData) }

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
