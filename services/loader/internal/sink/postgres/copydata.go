package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/punchflow/punchflow/services/loader/internal/recordtable"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// copyData is rows in PostgreSQL's binary COPY format ("COPY ... FROM STDIN
// BINARY", see the COPY page of the PostgreSQL manual), built by appending
// each row's fields in column order. The sink writes every row this way
// instead of through pgx's CopyFrom, which looks up an encode plan for every
// value and boxes each one in an interface: for a batch of events that was
// an eighth of the loader's CPU time, and this encoder takes a few percent
// of it.
//
// Only the wire encoding happens here; the server still checks every value
// (UTF-8 text, lengths, ranges, JSON, constraints), so a row it refuses
// fails the COPY with the server's error, as with any other client.
type copyData struct {
	buf []byte
}

// copySignature starts every binary COPY stream: the signature, a flags
// field (no OIDs) and an empty header extension.
var copySignature = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// y2k is PostgreSQL's epoch for timestamps and dates, in Unix seconds.
const y2k = 946684800

func newCopyData(sizeHint int) *copyData {
	d := &copyData{buf: make([]byte, 0, sizeHint+len(copySignature)+2)}
	d.buf = append(d.buf, copySignature...)
	return d
}

// row starts a row of n fields.
func (d *copyData) row(n int) {
	d.buf = binary.BigEndian.AppendUint16(d.buf, uint16(n))
}

// field appends a field's length; the caller appends its bytes.
func (d *copyData) field(n int) { d.buf = binary.BigEndian.AppendUint32(d.buf, uint32(n)) }

func (d *copyData) null() { d.buf = binary.BigEndian.AppendUint32(d.buf, 0xffffffff) }

// text appends a text, varchar, json or bytea field.
func (d *copyData) text(s string) {
	d.field(len(s))
	d.buf = append(d.buf, s...)
}

func (d *copyData) bytes(b []byte) {
	d.field(len(b))
	d.buf = append(d.buf, b...)
}

// nullText appends s, or NULL when s is empty.
func (d *copyData) nullText(s string) {
	if s == "" {
		d.null()
		return
	}
	d.text(s)
}

// jsonb appends a jsonb field: a format version (1) and the JSON text.
func (d *copyData) jsonb(b []byte) {
	d.field(len(b) + 1)
	d.buf = append(d.buf, 1)
	d.buf = append(d.buf, b...)
}

func (d *copyData) int4(v int32) {
	d.field(4)
	d.buf = binary.BigEndian.AppendUint32(d.buf, uint32(v))
}

func (d *copyData) int8(v int64) {
	d.field(8)
	d.buf = binary.BigEndian.AppendUint64(d.buf, uint64(v))
}

// timestamptz appends t as microseconds since 2000-01-01 UTC, truncated
// to the microsecond as PostgreSQL stores it.
func (d *copyData) timestamptz(t time.Time) {
	d.int8(microsSinceY2K(t))
}

// optTimestamptz appends *t, or NULL for nil.
func (d *copyData) optTimestamptz(t *time.Time) {
	if t == nil {
		d.null()
		return
	}
	d.timestamptz(*t)
}

// date appends a date given at midnight UTC (as time.Parse returns
// time.DateOnly) as days since 2000-01-01.
func (d *copyData) date(t time.Time) {
	d.int4(int32(floorDiv(t.Unix()-y2k, 86400)))
}

// float8 appends a double precision field.
func (d *copyData) float8(v float64) {
	d.field(8)
	d.buf = binary.BigEndian.AppendUint64(d.buf, math.Float64bits(v))
}

// boolean appends a boolean field.
func (d *copyData) boolean(v bool) {
	d.field(1)
	if v {
		d.buf = append(d.buf, 1)
	} else {
		d.buf = append(d.buf, 0)
	}
}

// value appends a typed record column of type t (see
// migrate.RecordTables for the column types).
func (d *copyData) value(t recordtable.Type, v recordtable.Value) {
	switch {
	case v.Null:
		d.null()
	case t == recordtable.String:
		d.text(v.S)
	case t == recordtable.Int:
		d.int8(v.I)
	case t == recordtable.Number:
		d.float8(v.F)
	case t == recordtable.Bool:
		d.boolean(v.B)
	case t == recordtable.Time:
		d.timestamptz(v.T)
	case t == recordtable.Date:
		d.date(v.T)
	default:
		panic(fmt.Sprintf("copyData: record column type %q", t))
	}
}

// end closes the stream with the trailer and returns it.
func (d *copyData) end() []byte {
	return binary.BigEndian.AppendUint16(d.buf, 0xffff)
}

func microsSinceY2K(t time.Time) int64 {
	return (t.Unix()-y2k)*1_000_000 + int64(t.Nanosecond()/1000)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// copyStatement is the COPY statement that reads binary rows of columns
// into table (quoted as every statement of the sink quotes them).
func copyStatement(table string, columns []string) string {
	return "COPY " + table + " (" + sink.ColumnList(columns, `"`) + ") FROM STDIN BINARY"
}

// rows are a batch's rows for COPY, encoded only as COPY sends them, so
// that encoding overlaps with the server's work on the rows already sent.
// encode appends the i-th row; an error (a value that cannot be stored,
// wrapped by fault) ends the COPY, and copyRows returns it.
type rows struct {
	n      int
	encode func(d *copyData, i int) error
}

// Len is the number of rows.
func (r rows) Len() int { return r.n }

// copyChunk is how much writeTo encodes before it writes: pgconn sends COPY
// data in messages of up to 64 KiB.
const copyChunk = 64 << 10

// writeTo writes the rows to w as one binary COPY stream, a chunk of about
// copyChunk bytes at a time, and returns the first error of encode or w.
func (r rows) writeTo(w io.Writer) error {
	d := newCopyData(copyChunk + 4096)
	for i := range r.n {
		if err := r.encode(d, i); err != nil {
			return err
		}
		if len(d.buf) >= copyChunk {
			if _, err := w.Write(d.buf); err != nil {
				return err
			}
			d.buf = d.buf[:0]
		}
	}
	_, err := w.Write(d.end())
	return err
}

// stream returns a reader of the rows' COPY stream, encoded by a goroutine
// of its own: while pgconn sends one chunk, the next is being encoded.
// wait, called once the COPY is over, ends the goroutine and returns the
// error encode returned, if any.
func (r rows) stream() (src io.Reader, wait func() error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := r.writeTo(pw)
		pw.CloseWithError(err)
		done <- err
	}()
	return pr, func() error {
		// A COPY that ended early (the server refused a row) leaves the
		// writer blocked on the pipe: closing it ends the writer.
		pr.Close()
		err := <-done
		if errors.Is(err, io.ErrClosedPipe) {
			return nil
		}
		return err
	}
}
