// Package recordtable describes the typed tables of business records: a
// table per record source, records_<source>, with a column for each field
// the transformer maps for that source, in the field's type, next to the
// record's id, natural key, time, fields object, raw payload and lineage.
//
// The types come from the records section of the transformer's rules file
// (records.<source>.fields.<field>.type), so that the loader and the
// transformer read one declaration; the rest of that file is the
// transformer's and is not read here. A source without a table loads into
// business_records, whose fields are one JSON column.
//
// The package is pure: it parses the declaration and turns a record's
// fields into typed values. Each sink maps the types to its dialect and
// creates the tables (package migrate).
package recordtable

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/encoding/json"
	"gopkg.in/yaml.v3"

	"github.com/punchflow/punchflow/proto"
)

// Type is a field type of the transformer's record mapping.
type Type string

// The field types, as the transformer puts them on the wire (proto.Field*).
const (
	String Type = proto.FieldString
	Int    Type = proto.FieldInt
	Number Type = proto.FieldNumber
	Bool   Type = proto.FieldBool
	Time   Type = proto.FieldTime
	Date   Type = proto.FieldDate
)

// Column is one typed column: the field of the record's fields object
// named Name, in a column of that name.
type Column struct {
	Name string
	Type Type
}

// Table is the typed table of one source.
type Table struct {
	Source  string
	Name    string
	Columns []Column // sorted by name
}

// Set is the typed tables by source. The zero value (nil) has none.
type Set map[string]*Table

// Sorted returns the tables sorted by name.
func (s Set) Sorted() []*Table {
	out := make([]*Table, 0, len(s))
	for _, t := range s {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *Table) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// FixedColumns are the columns every typed table has besides its typed
// ones, in table order: the typed columns come after occurred_at. A field
// cannot take one of these names.
var FixedColumns = []string{
	"id", "rules_version", "natural_key", "occurred_at",
	"fields", "payload",
	"raw_id", "raw_subject", "raw_stream", "raw_sequence", "clean_sequence",
	"run_id", "correlation_id", "batch_id", "loaded_at",
}

// identifier is a name every dialect keeps as it is, quoted or not (the
// sinks quote column names, so a reserved word such as order is a name
// like any other).
var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// maxName is the longest identifier PostgreSQL keeps (MySQL keeps 64);
// a table name leaves room for the suffixes of its index and of the
// PostgreSQL sink's staging table (_natural_key_idx, _stage).
const (
	maxName      = 63
	maxTableName = maxName - len("_natural_key_idx")
)

// Load reads the typed tables from the transformer's rules file at path.
func Load(path string) (Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("record types: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("record types in %s: %w", path, err)
	}
	return s, nil
}

// Parse reads the typed tables from the records section of a rules file;
// every other key is left to the transformer. Every problem is reported at
// once, each with the path of the setting to fix.
func Parse(data []byte) (Set, error) {
	var file struct {
		Records map[string]struct {
			Fields map[string]struct {
				Type string `yaml:"type"`
			} `yaml:"fields"`
		} `yaml:"records"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	var errs []error
	set := Set{}
	names := map[string]string{} // table name → source
	for source, rec := range file.Records {
		t := &Table{Source: source, Name: TableName(source)}
		if !identifier.MatchString(t.Name) || len(t.Name) > maxTableName {
			errs = append(errs, fmt.Errorf("records.%s: the source name does not make a table name (%s): use letters, digits, - and _, at most %d", source, t.Name, maxTableName-len("records_")))
			continue
		}
		if other, ok := names[t.Name]; ok {
			errs = append(errs, fmt.Errorf("records.%s: sources %s and %s both make table %s: rename one", source, other, source, t.Name))
			continue
		}
		names[t.Name] = source
		for field, f := range rec.Fields {
			at := fmt.Sprintf("records.%s.fields.%s", source, field)
			typ := Type(f.Type)
			switch typ {
			case String, Int, Number, Bool, Time, Date:
			default:
				errs = append(errs, fmt.Errorf("%s.type: %q: use string, int, number, bool, time or date", at, f.Type))
				continue
			}
			switch {
			case !identifier.MatchString(field) || len(field) > maxName:
				errs = append(errs, fmt.Errorf("%s: a typed column takes the field's name, which must be lowercase letters, digits and _ (at most %d, not starting with a digit): rename the field", at, maxName))
				continue
			case slices.Contains(FixedColumns, field):
				errs = append(errs, fmt.Errorf("%s: %s is a column every record table has already: rename the field", at, field))
				continue
			}
			t.Columns = append(t.Columns, Column{Name: field, Type: typ})
		}
		slices.SortFunc(t.Columns, func(a, b Column) int { return strings.Compare(a.Name, b.Name) })
		set[source] = t
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return set, nil
}

// TableName is the table of a source: records_ and the source in lowercase
// with - and . as _.
func TableName(source string) string {
	return "records_" + strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToLower(source))
}

// Value is one typed value: Null, or the field of its column's type (S for
// String, I for Int, F for Number, B for Bool, T for Time and Date, a date
// at midnight UTC).
type Value struct {
	Null bool
	S    string
	I    int64
	F    float64
	B    bool
	T    time.Time
}

// Values appends to dst the value of each column of t, in t.Columns order,
// read from fields, a record's fields object as it travelled. A field that
// is absent or null is Null; a field whose value is not of its column's
// type is an error naming the field, what it holds and what the column
// takes. Fields without a column are left alone (they stay in the fields
// object the tables keep).
func (t *Table) Values(dst []Value, fields []byte) ([]Value, error) {
	start := len(dst)
	for range t.Columns {
		dst = append(dst, Value{Null: true})
	}
	raw := bytes.TrimSpace(fields)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return dst, nil
	}
	if raw[0] != '{' {
		return dst[:start], fmt.Errorf("fields are not a JSON object: %s", short(raw))
	}
	// One pass over the object's members; the values of nested objects
	// and arrays (depth 2 and more) are skipped.
	var (
		tok   json.Tokenizer
		col   = -1    // the column of the member being read, or -1
		value = false // the next token at depth 1 is a member's value
	)
	for tok.Reset(raw); tok.Next(); {
		switch {
		case tok.Depth != 1:
		case tok.IsKey:
			col = t.column(tok.Value)
		case tok.Delim == ':':
			value = true
		case value:
			value = false
			if col < 0 {
				continue
			}
			c := t.Columns[col]
			if tok.Delim != 0 {
				return dst[:start], fmt.Errorf("field %s: an %s is not a %s (column %s.%s)", c.Name, nested(tok.Delim), c.Type, t.Name, c.Name)
			}
			if tok.Value.Null() {
				continue
			}
			v, err := convert(c.Type, json.RawMessage(tok.Value))
			if err != nil {
				return dst[:start], fmt.Errorf("field %s: %w (column %s.%s is %s)", c.Name, err, t.Name, c.Name, c.Type)
			}
			dst[start+col] = v
		}
	}
	if tok.Err != nil {
		return dst[:start], fmt.Errorf("fields are not a JSON object: %w", tok.Err)
	}
	return dst, nil
}

// column returns the position of the column of the member whose quoted
// name is key, or -1.
func (t *Table) column(key []byte) int {
	if len(key) < 2 || bytes.IndexByte(key, '\\') >= 0 {
		// A name with escapes is not one of ours: column names are
		// plain lowercase letters, digits and _.
		return -1
	}
	name := key[1 : len(key)-1]
	for i := range t.Columns {
		if t.Columns[i].Name == string(name) {
			return i
		}
	}
	return -1
}

func nested(d json.Delim) string {
	if d == '[' {
		return "array"
	}
	return "object"
}

func convert(typ Type, raw json.RawMessage) (Value, error) {
	switch typ {
	case String, Time, Date:
		if len(raw) == 0 || raw[0] != '"' {
			return Value{}, fmt.Errorf("%s is not a string", short(raw))
		}
		var s string
		if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
			s = string(raw[1 : len(raw)-1])
		} else if err := json.Unmarshal(raw, &s); err != nil {
			return Value{}, fmt.Errorf("%s: %w", short(raw), err)
		}
		switch typ {
		case Time:
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return Value{}, fmt.Errorf("%q is not an RFC 3339 instant", s)
			}
			return Value{T: t}, nil
		case Date:
			t, err := time.Parse(time.DateOnly, s)
			if err != nil {
				return Value{}, fmt.Errorf("%q is not a date as YYYY-MM-DD", s)
			}
			return Value{T: t}, nil
		}
		return Value{S: s}, nil
	case Int:
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			// A whole number written with a fraction or an exponent.
			f, ferr := strconv.ParseFloat(string(raw), 64)
			if ferr != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
				return Value{}, fmt.Errorf("%s is not a whole number", short(raw))
			}
			n = int64(f)
		}
		return Value{I: n}, nil
	case Number:
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return Value{}, fmt.Errorf("%s is not a number", short(raw))
		}
		return Value{F: f}, nil
	case Bool:
		switch string(raw) {
		case "true":
			return Value{B: true}, nil
		case "false":
			return Value{B: false}, nil
		}
		return Value{}, fmt.Errorf("%s is not true or false", short(raw))
	}
	return Value{}, fmt.Errorf("unknown type %q", typ)
}

// short quotes at most 40 bytes of a JSON value for an error.
func short(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "…"
	}
	return string(raw)
}
