package mysql

import (
	"errors"

	"github.com/go-sql-driver/mysql"

	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// classify wraps err in its fault class at this edge; see sink.Classify.
func classify(err error) error { return sink.Classify(err, refusedData) }

// refusedData reports whether err is the server refusing a value: SQLSTATE
// class 22 (data exception) or 23 (integrity constraint: NOT NULL, CHECK,
// unique), or one of the error numbers below that MySQL and MariaDB report
// with the catch-all SQLSTATE HY000.
func refusedData(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case 1213, 1205: // deadlock, lock wait timeout (SQLSTATE 40001 / HY000)
		return false
	case 1048, // ER_BAD_NULL_ERROR
		1062, // ER_DUP_ENTRY
		1264, // ER_WARN_DATA_OUT_OF_RANGE
		1265, // WARN_DATA_TRUNCATED
		1292, // ER_TRUNCATED_WRONG_VALUE (datetime)
		1300, // ER_INVALID_CHARACTER_STRING
		1366, // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
		1406, // ER_DATA_TOO_LONG
		1452, // ER_NO_REFERENCED_ROW_2
		1690, // ER_DATA_OUT_OF_RANGE
		3140, // ER_INVALID_JSON_TEXT (MySQL)
		3819, // ER_CHECK_CONSTRAINT_VIOLATED (MySQL)
		4025: // ER_CONSTRAINT_FAILED (MariaDB CHECK)
		return true
	}
	if len(me.SQLState) == 5 {
		switch string(me.SQLState[:2]) {
		case "22", "23":
			return true
		}
	}
	return false
}
