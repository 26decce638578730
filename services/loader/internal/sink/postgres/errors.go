package postgres

import (
	"errors"
	"slices"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// classify wraps err in its fault class at this edge; see sink.Classify.
func classify(err error) error { return sink.Classify(err, refusedData) }

// refusedData reports whether err is the server refusing the data of the
// statement, by SQLSTATE class:
//
//	22 data exception (value too long, out of range, bad datetime)
//	23 integrity constraint violation (CHECK, NOT NULL, unique)
//	42 syntax error or access rule violation (undefined column, bad type)
//	54 program limit exceeded (for example an index row too large)
//
// 42501 insufficient_privilege is the exception in class 42: a missing grant
// is fixed by an operator, after which the same batch loads, so it is not a
// reason to dead-letter data. Everything else, notably 08 (connection), 40001
// and 40P01 (serialization failure, deadlock), 53 (insufficient resources),
// 55P03 (lock not available), 57 (operator intervention: shutdown, query
// canceled by a timeout), is transient.
func refusedData(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return false
	}
	if pgErr.Code == "42501" {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", "23", "42", "54":
		return true
	}
	return false
}

// collides returns the table when err is the fast path's COPY meeting an id
// that is already in one of tables (or twice in the batch): a unique
// violation of the table's primary key, the one error the merge path
// resolves. Otherwise it returns "".
func collides(err error, tables []string) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		return ""
	}
	if pgErr.ConstraintName != pgErr.TableName+"_pkey" || !slices.Contains(tables, pgErr.TableName) {
		return ""
	}
	return pgErr.TableName
}
