package proto_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/proto"
)

// TestSchemaVersion checks which versions the decoder accepts and that the
// schema agrees with it on every one.
func TestSchemaVersion(t *testing.T) {
	tests := []struct {
		version string
		want    error // nil: accepted
	}{
		{"1.0", nil},
		{"1.7", nil},
		{"1.123", nil},
		{"01.3", nil},
		{"", proto.ErrInvalid},
		{"1", proto.ErrInvalid},
		{"1.", proto.ErrInvalid},
		{".1", proto.ErrInvalid},
		{"1.x", proto.ErrInvalid},
		{"+1.0", proto.ErrInvalid},
		{" 1.0", proto.ErrInvalid},
		{"1.0.1", proto.ErrInvalid},
		{"v1.0", proto.ErrInvalid},
		{"0.9", proto.ErrInvalid},
		{"2.0", proto.ErrUnsupportedVersion},
		{"10.0", proto.ErrUnsupportedVersion},
		{"99999999999999999999.0", proto.ErrUnsupportedVersion},
	}
	schema := compileSchemas(t)[proto.KindDeadLetter]
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			data := []byte(`{"schema_version":` + quoteJSON(tt.version) + `,"stage":"collect","reason_code":"bad_line"}`)
			_, err := proto.DecodeDeadLetter(data)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("decode error = %v, want %v", err, tt.want)
			}
			if serr := validateJSON(schema, data); (serr == nil) != (tt.want == nil) {
				t.Errorf("schema error = %v, but decoder error = %v", serr, err)
			}
		})
	}
}

// TestDecodeFieldNames checks that field names match exactly, as they do in
// the JSON Schema: a differently cased name is an unknown field.
func TestDecodeFieldNames(t *testing.T) {
	data := readFile(t, filepath.Join("testdata", "golden", proto.KindAttendanceEvent, "v1.0-full.json"))
	want, err := proto.DecodeAttendanceEvent(data)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, extra string
	}{
		{"upper-case id after id", `"ID":"ffffffffffffffffffffffffffffffff"`},
		{"title-case site", `"Site":"elsewhere"`},
		{"camel-case nested", `"Lineage":{"raw_id":"x"}`},
		{"upper-case direction", `"DIRECTION":"out"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edited := bytes.Replace(data, []byte("\n}"), []byte(",\n  "+tt.extra+"\n}"), 1)
			got, err := proto.DecodeAttendanceEvent(edited)
			if err != nil {
				t.Fatalf("decode: %v\n%s", err, edited)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("a differently cased field changed the message (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("differently cased required field is missing", func(t *testing.T) {
		edited := bytes.Replace(data, []byte(`"rules_version"`), []byte(`"Rules_Version"`), 1)
		if _, err := proto.DecodeAttendanceEvent(edited); !errors.Is(err, proto.ErrInvalid) {
			t.Errorf("decode error = %v, want ErrInvalid", err)
		}
	})
}

func TestDecodeNotAMessage(t *testing.T) {
	golden := readFile(t, filepath.Join("testdata", "golden", proto.KindRawPunch, "v1.0-full.json"))
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, proto.ErrInvalid},
		{"null", []byte("null"), proto.ErrInvalid},
		{"array", []byte("[]"), proto.ErrInvalid},
		{"string", []byte(`"raw_punch"`), proto.ErrInvalid},
		{"truncated", golden[:len(golden)/2], proto.ErrInvalid},
		{"trailing data", append(bytes.Clone(golden), " {}"...), proto.ErrInvalid},
		{"wrong type", bytes.Replace(golden, []byte(`"state": 0`), []byte(`"state": "0"`), 1), proto.ErrInvalid},
		{"fractional integer", bytes.Replace(golden, []byte(`"state": 0`), []byte(`"state": 0.5`), 1), proto.ErrInvalid},
		{"trailing white space is fine", append(bytes.Clone(golden), " \r\n\t"...), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := proto.DecodeRawPunch(tt.data)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("decode error = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestFieldError checks that a broken field is reported by name.
func TestFieldError(t *testing.T) {
	data := readFile(t, filepath.Join("testdata", "invalid", proto.KindAttendanceEvent, "bad-work-date.json"))
	_, err := proto.DecodeAttendanceEvent(data)
	var fe *proto.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FieldError", err, err)
	}
	if fe.Message != proto.KindAttendanceEvent || fe.Field != "work_date" {
		t.Errorf("FieldError{Message: %q, Field: %q}, want %q, %q", fe.Message, fe.Field, proto.KindAttendanceEvent, "work_date")
	}
	if !strings.Contains(err.Error(), "work_date") {
		t.Errorf("error %q does not name the field", err)
	}
}

// TestEncodePayloadVerbatim checks that Encode writes a raw payload as it is,
// so that the record id still matches the payload a consumer decodes.
func TestEncodePayloadVerbatim(t *testing.T) {
	tests := []struct {
		name, payload string
	}{
		{"html characters", `{"subject":"gate <2> & gate 3"}`},
		{"line separators", "{\"note\":\"a\u2028b\u2029c\"}"},
		{"inner white space", "{ \"a\" : [ 1, 2 ],\n  \"b\": null }"},
		{"non-ascii", `{"name":"Logistik Süd","emoji":"✓"}`},
		{"escapes", `{"s":"\u00e9\n\"q\""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := proto.NewRawRecord(proto.RawRecord{Source: "api:helpdesk", NaturalKey: "TCK-1", RunID: "run-1", Payload: []byte(tt.payload)})
			b, err := proto.Encode(&r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(tt.payload)) {
				t.Errorf("encoded message does not contain the payload verbatim:\n%s", b)
			}
			got, err := proto.DecodeRawRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			if id := proto.RecordID(got.Source, got.NaturalKey, got.Payload); id != r.ID {
				t.Errorf("id of the decoded payload %s, message id %s", id, r.ID)
			}
		})
	}
}

func TestEncodeDeterministic(t *testing.T) {
	r := proto.CleanRecord{ID: "x", SchemaVersion: "1.0", RulesVersion: "r", Source: "s", NaturalKey: "k", Payload: []byte(`{}`),
		Fields: map[string]any{"z": 1.0, "a": "x", "m": true, "b": map[string]any{"y": 2.0, "c": nil}}}
	first, err := proto.Encode(&r)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		b, _ := proto.Encode(&r)
		if !bytes.Equal(b, first) {
			t.Fatalf("Encode gave\n%s\nthen\n%s", first, b)
		}
	}
	if !bytes.Contains(first, []byte(`"fields":{"a":"x","b":{"c":null,"y":2},"m":true,"z":1}`)) {
		t.Errorf("map keys are not sorted:\n%s", first)
	}
}

func TestParseLocalTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time // zero: an error
	}{
		{"2024-03-11T08:57:31", time.Date(2024, 3, 11, 8, 57, 31, 0, time.UTC)},
		{"2024-02-29T23:59:59", time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)},
		{"0000-01-01T00:00:00", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"2023-02-29T08:00:00", time.Time{}},
		{"2024-04-31T08:00:00", time.Time{}},
		{"2024-03-11T24:00:00", time.Time{}},
		{"2024-03-11T08:60:00", time.Time{}},
		{"2024-03-11T08:00:60", time.Time{}},
		{"2024-03-11T8:57:31", time.Time{}},
		{"2024-03-11T08:57:31.5", time.Time{}},
		{"2024-03-11T08:57:31Z", time.Time{}},
		{"2024-03-11T08:57:31+01:00", time.Time{}},
		{"2024-03-11 08:57:31", time.Time{}},
		{"2024-03-11t08:57:31", time.Time{}},
		{"24-03-11T08:57:31", time.Time{}},
		{"", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := proto.ParseLocalTime(tt.in)
			if tt.want.IsZero() {
				if err == nil {
					t.Errorf("ParseLocalTime(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("ParseLocalTime(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
			}
			if f := proto.FormatLocalTime(got.In(time.FixedZone("X", -5*3600))); f == tt.in {
				t.Errorf("FormatLocalTime must render the wall clock of its argument's zone")
			}
			if f := proto.FormatLocalTime(got); f != tt.in {
				t.Errorf("FormatLocalTime(ParseLocalTime(%q)) = %q", tt.in, f)
			}
		})
	}
}

// TestLocalTimeAgreesWithSchema checks, for every day of some leap and
// non-leap years and some malformed strings, that the schema's patterns for
// device_time and work_date accept exactly what the decoder accepts.
func TestLocalTimeAgreesWithSchema(t *testing.T) {
	schema := compileSchemas(t)[proto.KindAttendanceEvent]
	golden := readFile(t, filepath.Join("testdata", "golden", proto.KindAttendanceEvent, "v1.0-full.json"))
	var dates []string
	for _, year := range []int{0, 1900, 2000, 2023, 2024, 2100} {
		for d := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() == year; d = d.AddDate(0, 0, 1) {
			dates = append(dates, d.Format("2006-01-02"))
		}
		for _, md := range []string{"02-29", "02-30", "04-31", "06-31", "09-31", "11-31", "13-01", "00-10", "01-00", "01-32"} {
			dates = append(dates, time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).Format("2006")+"-"+md)
		}
	}
	dates = append(dates, "2024-1-05", "2024-01-5", "20240105", "2024/01/05", "")
	times := []string{"00:00:00", "23:59:59", "12:30:45", "24:00:00", "23:60:00", "23:59:60", "9:00:00", "09:00", "09:00:00.5"}
	check := func(t *testing.T, field, value string) {
		t.Helper()
		edited := bytes.Replace(golden, []byte(`"`+field+`": "`), []byte(`"`+field+`": "`+value+`", "x_`+field+`": "`), 1)
		if bytes.Equal(edited, golden) {
			t.Fatalf("golden file has no %q to replace", field)
		}
		_, derr := proto.DecodeAttendanceEvent(edited)
		serr := validateJSON(schema, edited)
		if (derr == nil) != (serr == nil) {
			t.Errorf("%s %q: decoder error %v, schema error %v", field, value, derr, serr)
		}
	}
	for _, d := range dates {
		check(t, "work_date", d)
	}
	for i, d := range dates {
		check(t, "device_time", d+"T08:00:00")
		if i < 31 {
			for _, tm := range times {
				check(t, "device_time", d+"T"+tm)
			}
		}
	}
}

func quoteJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// TestDecodeDepth checks the nesting limit: arrays and objects may nest 128
// levels deep (counting the message itself), wherever they are, and brackets
// inside strings do not count.
func TestDecodeDepth(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	message := func(payload, fields, extra string) []byte {
		return []byte(`{"id":"x","schema_version":"1.0","rules_version":"r","source":"s","natural_key":"k",` +
			`"lineage":{"raw_id":"r"},"payload":` + payload + `,"fields":{"f":` + fields + `}` + extra + `}`)
	}
	tests := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"payload at the limit", message(nest(127), "1", ""), true},
		{"payload over the limit", message(nest(128), "1", ""), false},
		{"fields at the limit", message("1", nest(126), ""), true},
		{"fields over the limit", message("1", nest(127), ""), false},
		{"unknown field over the limit", message("1", "1", `,"x":`+nest(128)), false},
		{"brackets in strings", message(`"`+strings.Repeat("[{", 200)+`"`, `"\"`+strings.Repeat("[", 200)+`"`, ""), true},
		{"escaped backslash before the closing quote", message(`"\\"`, `"`+strings.Repeat("[", 200)+`"`, `,"x":"\\\\"`), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := proto.DecodeCleanRecord(tt.data)
			if tt.ok && err != nil || !tt.ok && !errors.Is(err, proto.ErrInvalid) {
				t.Errorf("decode error = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
