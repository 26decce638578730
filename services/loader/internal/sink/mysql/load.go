package mysql

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// loadData streams rows to table with LOAD DATA LOCAL INFILE ... IGNORE and
// returns how many it inserted. A warning other than a duplicate key rolls
// the load back with a permanent error (see the package comment).
func (s *Sink) loadData(ctx context.Context, tx *sql.Tx, table string, columns []string, src rows) (int, error) {
	// The rows are encoded as the driver reads them, so that encoding
	// overlaps with the server's work on the rows already sent. The
	// driver asks for the reader once per statement; whatever happens, the
	// reader is closed when the statement returns, which ends the encoding.
	var (
		mu        sync.Mutex
		readers   []*io.PipeReader
		encodeErr error // the first row that refused to encode
		encoders  sync.WaitGroup
	)
	name := fmt.Sprintf("%s-%d", s.prefix, s.readers.Add(1))
	mysql.RegisterReaderHandler(name, func() io.Reader {
		pr, pw := io.Pipe()
		mu.Lock()
		readers = append(readers, pr)
		mu.Unlock()
		encoders.Go(func() {
			err := writeTSV(pw, src)
			pw.CloseWithError(err)
			if err != nil && !errors.Is(err, io.ErrClosedPipe) {
				mu.Lock()
				encodeErr = cmp.Or(encodeErr, err)
				mu.Unlock()
			}
		})
		return pr
	})
	stop := func() {
		mysql.DeregisterReaderHandler(name)
		mu.Lock()
		for _, r := range readers {
			r.Close()
		}
		mu.Unlock()
		encoders.Wait()
	}
	res, err := tx.ExecContext(ctx, `LOAD DATA LOCAL INFILE 'Reader::`+name+`' IGNORE INTO TABLE `+table+`
		CHARACTER SET utf8mb4
		FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'
		(`+sink.ColumnList(columns, "`")+`)`)
	stop()
	if encodeErr != nil {
		// The driver ended the file at the row that refused to encode;
		// the rows before it are rolled back with the transaction.
		return 0, encodeErr
	}
	if err != nil {
		return 0, fmt.Errorf("load data into %s: %w", table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("load data into %s: %w", table, err)
	}
	var warnings int
	if err := tx.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&warnings); err != nil {
		return 0, fmt.Errorf("load data into %s: count warnings: %w", table, err)
	}
	if warnings > 0 {
		// Each skipped row left one warning: a duplicate key, or the reason
		// the server refused it. Any of the latter refuses the batch.
		if err := refusedByWarnings(ctx, tx, table, warnings, src.n-int(n)); err != nil {
			return 0, err
		}
	}
	return int(n), nil
}

// writeTSV writes the rows of src to w as LOAD DATA reads them, in chunks
// of about 64 KiB.
func writeTSV(w io.Writer, src rows) error {
	var (
		buf bytes.Buffer
		row []any
	)
	for i := range src.n {
		var err error
		if row, err = src.row(i, row); err != nil {
			return err
		}
		if err := appendTSV(&buf, row); err != nil {
			return err
		}
		if buf.Len() >= 64<<10 {
			if _, err := w.Write(buf.Bytes()); err != nil {
				return err
			}
			buf.Reset()
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// refusedByWarnings reads the warnings of the last statement and returns a
// permanent error quoting those that are not duplicate keys, or nil when
// all are. The session keeps up to maxErrorCount warnings; past that it
// relies on the count: more warnings than skipped rows means some row had
// a value adjusted.
func refusedByWarnings(ctx context.Context, tx *sql.Tx, table string, warnings, skipped int) error {
	rs, err := tx.QueryContext(ctx, "SHOW WARNINGS")
	if err != nil {
		return fmt.Errorf("load data into %s: read %d warnings: %w", table, warnings, err)
	}
	defer rs.Close()
	var (
		msgs    []string
		refused int
	)
	for rs.Next() {
		var (
			level, msg string
			code       int
		)
		if err := rs.Scan(&level, &code, &msg); err != nil {
			return fmt.Errorf("load data into %s: read warnings: %w", table, err)
		}
		if code != errDuplicateKey {
			refused++
			if len(msgs) < 3 {
				msgs = append(msgs, fmt.Sprintf("%s %d: %s", level, code, msg))
			}
		}
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("load data into %s: read warnings: %w", table, err)
	}
	if refused == 0 && warnings > maxErrorCount && warnings > skipped {
		refused = warnings - skipped
		msgs = append(msgs, "values adjusted beyond the warnings the server keeps")
	}
	if refused == 0 {
		return nil
	}
	return fault.NewPermanent(proto.ReasonRejectedBySink,
		fmt.Errorf("load data into %s: the server refused %d value(s): %s", table, refused, strings.Join(msgs, "; ")))
}

// maxErrorCount is the session's max_error_count: how many warnings the
// server keeps for SHOW WARNINGS (its maximum).
const maxErrorCount = 65535

// appendTSV appends one row in LOAD DATA's default text format: fields
// separated by tabs, \N for NULL, backslash escapes for the backslash, tab,
// newline, carriage return and NUL.
func appendTSV(buf *bytes.Buffer, row []any) error {
	for i, v := range row {
		if i > 0 {
			buf.WriteByte('\t')
		}
		switch x := v.(type) {
		case nil:
			buf.WriteString(`\N`)
		case string:
			escapeTSV(buf, x)
		case []byte:
			escapeTSV(buf, string(x))
		case int64:
			buf.WriteString(strconv.FormatInt(x, 10))
		case float64:
			buf.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
		case bool:
			if x {
				buf.WriteByte('1')
			} else {
				buf.WriteByte('0')
			}
		case time.Time:
			buf.WriteString(x.UTC().Format(datetimeLayout))
		default:
			return fmt.Errorf("load data: cannot send a %T", v)
		}
	}
	buf.WriteByte('\n')
	return nil
}

// datetimeLayout is how DATETIME(6) values are written.
const datetimeLayout = "2006-01-02 15:04:05.000000"

func escapeTSV(buf *bytes.Buffer, s string) {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '\\':
			esc = `\\`
		case '\t':
			esc = `\t`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		case 0:
			esc = `\0`
		default:
			continue
		}
		buf.WriteString(s[start:i])
		buf.WriteString(esc)
		start = i + 1
	}
	buf.WriteString(s[start:])
}

// insertRows inserts rows into table with multi-row INSERTs, an id already
// present left as it is (ON DUPLICATE KEY UPDATE id = id affects 0 rows),
// and returns how many it inserted.
func insertRows(ctx context.Context, tx *sql.Tx, table string, columns []string, rows [][]any) (int, error) {
	row := "(?" + strings.Repeat(", ?", len(columns)-1) + ")"
	prefix := "INSERT INTO " + table + " (" + sink.ColumnList(columns, "`") + ") VALUES "
	const suffix = " ON DUPLICATE KEY UPDATE id = id"
	inserted := 0
	for start := 0; start < len(rows); {
		// Statements of at most insertRowsMax rows and about insertBytesMax
		// bytes of values, well under max_allowed_packet.
		end, size := start, 0
		for end < len(rows) && end-start < insertRowsMax && size < insertBytesMax {
			size += rowSize(rows[end])
			end++
		}
		var q strings.Builder
		q.WriteString(prefix)
		args := make([]any, 0, (end-start)*len(columns))
		for i := start; i < end; i++ {
			if i > start {
				q.WriteString(", ")
			}
			q.WriteString(row)
			args = append(args, rows[i]...)
		}
		q.WriteString(suffix)
		res, err := tx.ExecContext(ctx, q.String(), args...)
		if err != nil {
			return 0, fmt.Errorf("insert into %s: %w", table, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("insert into %s: %w", table, err)
		}
		inserted += int(n)
		start = end
	}
	return inserted, nil
}

const (
	insertRowsMax  = 1000
	insertBytesMax = 4 << 20
)

func rowSize(row []any) int {
	n := 0
	for _, v := range row {
		switch x := v.(type) {
		case string:
			n += len(x) + 2
		case []byte:
			n += len(x) + 2
		default:
			n += 28
		}
	}
	return n
}

// errDuplicateKey is ER_DUP_ENTRY.
const errDuplicateKey = 1062
