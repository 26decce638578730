package postgres

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestCopyDataFields holds every field encoding to the bytes pgx's own
// binary codecs make of the same value.
func TestCopyDataFields(t *testing.T) {
	m := pgtype.NewMap()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	date := func(s string) time.Time {
		v, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name   string
		oid    uint32
		value  any
		encode func(*copyData)
	}{
		{"text", pgtype.TextOID, "héllo, wörld", func(d *copyData) { d.text("héllo, wörld") }},
		{"empty text", pgtype.TextOID, "", func(d *copyData) { d.text("") }},
		{"bytes as json", pgtype.JSONOID, []byte(`{"a":[1,2]}`), func(d *copyData) { d.bytes([]byte(`{"a":[1,2]}`)) }},
		{"jsonb", pgtype.JSONBOID, []byte(`{"a":1}`), func(d *copyData) { d.jsonb([]byte(`{"a":1}`)) }},
		{"int4", pgtype.Int4OID, int32(-123456), func(d *copyData) { d.int4(-123456) }},
		{"int8", pgtype.Int8OID, int64(1) << 40, func(d *copyData) { d.int8(1 << 40) }},
		{"timestamptz", pgtype.TimestamptzOID, at("2024-03-25T08:01:02.123456789Z"), func(d *copyData) { d.timestamptz(at("2024-03-25T08:01:02.123456789Z")) }},
		{"timestamptz in a zone", pgtype.TimestamptzOID, at("2024-03-25T08:01:02.5+08:00"), func(d *copyData) { d.timestamptz(at("2024-03-25T08:01:02.5+08:00")) }},
		{"timestamptz before 2000", pgtype.TimestamptzOID, at("1999-12-31T23:59:59.999999Z"), func(d *copyData) { d.timestamptz(at("1999-12-31T23:59:59.999999Z")) }},
		{"timestamptz before 1970", pgtype.TimestamptzOID, at("1969-07-20T20:17:40.000001Z"), func(d *copyData) { d.timestamptz(at("1969-07-20T20:17:40.000001Z")) }},
		{"date", pgtype.DateOID, date("2024-03-25"), func(d *copyData) { d.date(date("2024-03-25")) }},
		{"date before 2000", pgtype.DateOID, date("1999-12-31"), func(d *copyData) { d.date(date("1999-12-31")) }},
		{"date far back", pgtype.DateOID, date("0001-01-01"), func(d *copyData) { d.date(date("0001-01-01")) }},
		{"date far ahead", pgtype.DateOID, date("9999-12-31"), func(d *copyData) { d.date(date("9999-12-31")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := m.Encode(tt.oid, pgtype.BinaryFormatCode, tt.value, nil)
			if err != nil {
				t.Fatal(err)
			}
			var d copyData
			tt.encode(&d)
			if n := int(binary.BigEndian.Uint32(d.buf)); n != len(d.buf)-4 {
				t.Fatalf("length prefix %d, field has %d bytes", n, len(d.buf)-4)
			}
			if got := d.buf[4:]; !bytes.Equal(got, want) {
				t.Errorf("field = %x, want %x (pgx)", got, want)
			}
		})
	}
}

func TestCopyDataNulls(t *testing.T) {
	var d copyData
	d.null()
	d.nullText("")
	d.optTimestamptz(nil)
	want := bytes.Repeat([]byte{0xff, 0xff, 0xff, 0xff}, 3)
	if !bytes.Equal(d.buf, want) {
		t.Errorf("NULLs = %x, want %x", d.buf, want)
	}
	d.buf = nil
	d.nullText("x")
	if want := []byte{0, 0, 0, 1, 'x'}; !bytes.Equal(d.buf, want) {
		t.Errorf("nullText(x) = %x, want %x", d.buf, want)
	}
}

// TestRowsStream reads rows through the streaming encoder in pieces of
// every size and holds them to the same rows encoded at once: signature,
// rows, trailer; a row that refuses to encode ends the stream with its
// error; a reader that stops early ends the encoder.
func TestRowsStream(t *testing.T) {
	const n = 3000 // several chunks
	encode := func(d *copyData, i int) error {
		d.row(2)
		d.int8(int64(i))
		d.text(string(bytes.Repeat([]byte{'a' + byte(i%26)}, i%97)))
		return nil
	}
	all := newCopyData(0)
	for i := range n {
		_ = encode(all, i)
	}
	want := all.end()
	if len(want) < 3*copyChunk {
		t.Fatalf("the stream is %d bytes, want several chunks of %d", len(want), copyChunk)
	}
	r := rows{n: n, encode: encode}
	for _, read := range []func(io.Reader) io.Reader{
		func(r io.Reader) io.Reader { return r },
		iotest.OneByteReader,
		iotest.HalfReader,
	} {
		src, wait := r.stream()
		got, err := io.ReadAll(read(src))
		if err != nil {
			t.Fatal(err)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("stream of %d bytes differs from the %d bytes encoded at once", len(got), len(want))
		}
	}
	var empty bytes.Buffer
	if err := (rows{}).writeTo(&empty); err != nil {
		t.Fatal(err)
	}
	if want := append(append([]byte{}, copySignature...), 0xff, 0xff); !bytes.Equal(empty.Bytes(), want) {
		t.Errorf("no rows = %x, want %x", empty.Bytes(), want)
	}

	refused := errors.New("row 2500 refused")
	bad := rows{n: n, encode: func(d *copyData, i int) error {
		if i == 2500 {
			return refused
		}
		return encode(d, i)
	}}
	src, wait := bad.stream()
	if _, err := io.ReadAll(src); !errors.Is(err, refused) {
		t.Errorf("reading a stream whose row refused: %v, want %v", err, refused)
	}
	if err := wait(); !errors.Is(err, refused) {
		t.Errorf("wait = %v, want %v", err, refused)
	}

	src, wait = r.stream()
	if _, err := src.Read(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Errorf("wait after the reader stopped early = %v, want nil", err)
	}
}
