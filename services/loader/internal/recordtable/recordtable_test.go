package recordtable

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const rules = `
default_time_zone: Europe/Berlin
sites: {hq: {time_zone: Asia/Singapore}}
records:
  orders:
    natural_key: [order_id]
    timestamp: created
    fields:
      order_id: {path: id, type: string, required: true}
      total:    {path: totals.gross, type: number}
      lines:    {path: line_count, type: int}
      paid:     {path: status.paid, type: bool}
      created:  {path: created_at, type: time}
      due:      {path: due, type: date, layout: 02.01.2006}
  ticket-events:
    fields:
      ticket: {path: t, type: string}
`

func TestParse(t *testing.T) {
	set, err := Parse([]byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	want := Set{
		"orders": {Source: "orders", Name: "records_orders", Columns: []Column{
			{"created", Time}, {"due", Date}, {"lines", Int},
			{"order_id", String}, {"paid", Bool}, {"total", Number},
		}},
		"ticket-events": {Source: "ticket-events", Name: "records_ticket_events", Columns: []Column{{"ticket", String}}},
	}
	if diff := cmp.Diff(want, set); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	if got := set.Sorted(); len(got) != 2 || got[0].Name != "records_orders" || got[1].Name != "records_ticket_events" {
		t.Errorf("Sorted = %v", got)
	}
	none, err := Parse([]byte("sites: {}\n"))
	if err != nil || len(none) != 0 {
		t.Errorf("Parse without records = %v, %v; want no tables", none, err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"not yaml", "records: [", []string{"not YAML"}},
		{"unknown type", "records: {orders: {fields: {a: {type: money}}}}", []string{`records.orders.fields.a.type: "money"`, "use string, int"}},
		{"no type", "records: {orders: {fields: {a: {path: x}}}}", []string{`records.orders.fields.a.type: ""`}},
		{"field name", "records: {orders: {fields: {Order-ID: {type: string}}}}", []string{"records.orders.fields.Order-ID", "rename the field"}},
		{"reserved name", "records: {orders: {fields: {payload: {type: string}}}}", []string{"payload is a column every record table has"}},
		{"source name", "records: {'ord ers': {fields: {a: {type: string}}}}", []string{"records.ord ers", "does not make a table name"}},
		{"same table", "records: {a-b: {fields: {x: {type: int}}}, a_b: {fields: {x: {type: int}}}}", []string{"both make table records_a_b"}},
		{"every problem", "records: {orders: {fields: {a: {type: money}, B: {type: int}}}}", []string{"fields.a.type", "fields.B"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse returned nil")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestValues(t *testing.T) {
	set, err := Parse([]byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	orders := set["orders"]
	// Columns: created, due, lines, order_id, paid, total.
	got, err := orders.Values(nil, []byte(`{"order_id":"o-1\u00e9","total":12.5,"lines":3,"paid":true,"created":"2024-03-25T08:00:00.123+01:00","due":"2024-04-01","extra":[1]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Value{
		{T: time.Date(2024, 3, 25, 7, 0, 0, 123e6, time.UTC)},
		{T: time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)},
		{I: 3}, {S: "o-1é"}, {B: true}, {F: 12.5},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("Values (-want +got):\n%s", diff)
	}
	nulls, err := orders.Values(nil, []byte(`{"total":null}`))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range nulls {
		if !v.Null {
			t.Errorf("column %s = %+v, want NULL", orders.Columns[i].Name, v)
		}
	}
	for _, fields := range []string{"", "null", "{}"} {
		if vs, err := orders.Values(nil, []byte(fields)); err != nil || len(vs) != 6 || !vs[0].Null {
			t.Errorf("Values(%q) = %v, %v; want six NULLs", fields, vs, err)
		}
	}
	if vs, err := orders.Values(nil, []byte(`{"lines":4e2,"total":-1}`)); err != nil || vs[2].I != 400 || vs[5].F != -1 {
		t.Errorf("whole number with an exponent: %v, %v", vs, err)
	}
}

func TestValuesErrors(t *testing.T) {
	set, err := Parse([]byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ fields, want string }{
		{`{"order_id":12}`, "field order_id: 12 is not a string (column records_orders.order_id is string)"},
		{`{"lines":2.5}`, "field lines: 2.5 is not a whole number"},
		{`{"lines":"2"}`, `field lines: "2" is not a whole number`},
		{`{"lines":1e300}`, "is not a whole number"},
		{`{"total":"12"}`, `field total: "12" is not a number`},
		{`{"paid":"yes"}`, `field paid: "yes" is not true or false`},
		{`{"created":"yesterday"}`, `field created: "yesterday" is not an RFC 3339 instant`},
		{`{"due":"01.04.2024"}`, `field due: "01.04.2024" is not a date as YYYY-MM-DD`},
		{`[1,2]`, "fields are not a JSON object"},
		{`{"order_id":"` + strings.Repeat("x", 100) + `"}`, ""},
	}
	for _, tt := range tests {
		_, err := set["orders"].Values(nil, []byte(tt.fields))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Values(%.30s…) = %v, want no error", tt.fields, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("Values(%s) error = %v, want it to mention %q", tt.fields, err, tt.want)
		}
	}
}

// FuzzValues feeds arbitrary fields objects to the conversion: it returns
// one value per column or an error, and never panics.
func FuzzValues(f *testing.F) {
	set, err := Parse([]byte(rules))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{`{"order_id":"a","lines":1,"total":1.5,"paid":false,"created":"2024-01-01T00:00:00Z","due":"2024-01-01"}`,
		`{}`, `null`, `{"lines":-0}`, `{"order_id":"\ud800"}`, `{"a":{"b":[1,{"c":null}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, fields []byte) {
		vs, err := set["orders"].Values(nil, fields)
		if err == nil && len(vs) != len(set["orders"].Columns) {
			t.Fatalf("%d values for %d columns", len(vs), len(set["orders"].Columns))
		}
	})
}
