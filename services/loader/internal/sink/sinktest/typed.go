package sinktest

import (
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/daily"
	"github.com/punchflow/punchflow/services/loader/internal/recordtable"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
	"github.com/punchflow/punchflow/services/loader/internal/synth"
)

// typedRules types two sources: the orders synth makes, and payments with
// a field of every type, one named with a reserved word. Records of any
// other source go to business_records.
const typedRules = synth.RecordTypes + `  payments:
    fields:
      order:     {path: p, type: string}
      cents:     {path: c, type: int}
      rate:      {path: r, type: number}
      refunded:  {path: x, type: bool}
      paid_at:   {path: t, type: time}
      value_day: {path: d, type: date}
`

func typedTables(t testing.TB, rules string) recordtable.Set {
	t.Helper()
	set, err := recordtable.Parse([]byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// payment returns the k-th payment record: fields of every type, some
// absent or null.
func payment(k int) sink.Record {
	at := time.Date(2024, 3, 25, 8, 0, 0, 0, time.UTC).Add(time.Duration(k) * time.Minute)
	fields := fmt.Sprintf(`{"order":"order \"%d\" ✓","cents":%d,"rate":%g,"refunded":%t,"paid_at":%q,"value_day":%q,"unmapped":{"a":[1,2]}}`,
		k, 9007199254740993+int64(k), 0.25+float64(k), k%2 == 0, at.Add(123456789*time.Nanosecond).Format(time.RFC3339Nano), at.Format(time.DateOnly))
	switch k % 5 {
	case 3:
		fields = `{"order":null}` // every column NULL
	case 4:
		fields = ""
	}
	key := fmt.Sprintf("pay-%04d", k)
	rawID := proto.RecordID("payments", key, []byte(fields))
	return sink.Record{
		CleanRecord: proto.CleanRecord{ID: proto.CleanID(rawID, "rules-t"), SchemaVersion: proto.SchemaVersion, RulesVersion: "rules-t",
			Source: "payments", NaturalKey: key, OccurredAt: &at, Payload: []byte(`{"raw":` + strconv.Itoa(k) + `}`),
			Lineage: proto.Lineage{RawID: rawID, RawSubject: "raw.record.payments", RawStream: "RAW", RawSequence: uint64(k + 1)}},
		RawFields: []byte(fields),
		Seq:       uint64(200000 + k),
	}
}

// ReadTyped reads the typed columns of table (and its id and batch id), a
// row per record ordered by id, each value as text: strings as they are,
// numbers in Go's shortest form, booleans as true or false, instants in UTC
// RFC 3339 to the microsecond, dates as YYYY-MM-DD, and NULL as <null>.
func ReadTyped(t testing.TB, db *sql.DB, d Dialect, table *recordtable.Table) [][]string {
	t.Helper()
	cols := []string{"id", "batch_id"}
	for _, c := range table.Columns {
		name := d.Quote + c.Name + d.Quote
		if c.Type == recordtable.Date {
			cols = append(cols, d.Date(name))
		} else {
			cols = append(cols, name)
		}
	}
	rs, err := db.QueryContext(t.Context(), `SELECT `+strings.Join(cols, ", ")+` FROM `+table.Name+` ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out [][]string
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			typ := recordtable.String
			if i >= 2 {
				typ = table.Columns[i-2].Type
			}
			row[i] = typedText(t, typ, v)
		}
		out = append(out, row)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// typedText renders a value a driver read from a typed column as ReadTyped
// describes.
func typedText(t testing.TB, typ recordtable.Type, v any) string {
	t.Helper()
	if v == nil {
		return "<null>"
	}
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	switch typ {
	case recordtable.Time:
		// Microseconds, as PostgreSQL and MySQL keep them (SQLite keeps
		// nanoseconds).
		return Instant(t, v).Truncate(time.Microsecond).Format(time.RFC3339Nano)
	case recordtable.Bool:
		switch x := v.(type) {
		case bool:
			return strconv.FormatBool(x)
		case int64:
			return strconv.FormatBool(x != 0)
		case string:
			n, err := strconv.Atoi(x)
			if err != nil {
				t.Fatalf("boolean %q", x)
			}
			return strconv.FormatBool(n != 0)
		}
	case recordtable.Int:
		switch x := v.(type) {
		case int64:
			return strconv.FormatInt(x, 10)
		case string:
			return x
		}
	case recordtable.Number:
		switch x := v.(type) {
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64)
		case string:
			f, err := strconv.ParseFloat(x, 64)
			if err != nil {
				t.Fatalf("number %q", x)
			}
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
	default:
		if s, ok := v.(string); ok {
			return s
		}
	}
	t.Fatalf("%s value of type %T: %v", typ, v, v)
	return ""
}

// wantTyped is ReadTyped's row of record r loaded by batch.
func wantTyped(t testing.TB, table *recordtable.Table, r sink.Record, batch string) []string {
	t.Helper()
	fields, err := r.FieldsJSON()
	if err != nil {
		t.Fatal(err)
	}
	vals, err := table.Values(nil, fields)
	if err != nil {
		t.Fatal(err)
	}
	row := []string{r.ID, batch}
	for i, v := range vals {
		switch {
		case v.Null:
			row = append(row, "<null>")
		case table.Columns[i].Type == recordtable.String:
			row = append(row, v.S)
		case table.Columns[i].Type == recordtable.Int:
			row = append(row, strconv.FormatInt(v.I, 10))
		case table.Columns[i].Type == recordtable.Number:
			row = append(row, strconv.FormatFloat(v.F, 'g', -1, 64))
		case table.Columns[i].Type == recordtable.Bool:
			row = append(row, strconv.FormatBool(v.B))
		case table.Columns[i].Type == recordtable.Time:
			row = append(row, v.T.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano))
		case table.Columns[i].Type == recordtable.Date:
			row = append(row, v.T.Format(time.DateOnly))
		}
	}
	return row
}

func testTypedRecords(t *testing.T, h Harness) {
	tables := typedTables(t, typedRules)
	s, db, _ := h.Open(t, Options{Rules: defaultRules(), Tables: tables})
	g := synth.New(synth.Config{})
	orders := Records(g, "orders", 0, 30)
	tickets := Records(g, "tickets", 0, 10)
	payments := make([]sink.Record, 20)
	for i := range payments {
		payments[i] = payment(i)
	}
	// One decoded by the loader beforehand (Typed set), as the worker
	// passes them; the rest decoded by the sink.
	fields, err := orders[0].FieldsJSON()
	if err != nil {
		t.Fatal(err)
	}
	if orders[0].Typed, err = tables["orders"].Values(nil, fields); err != nil {
		t.Fatal(err)
	}
	a := NewBatch("typed-a", Events(g, 0, 4), append(append(append([]sink.Record{}, orders[:20]...), tickets...), payments[:10]...))
	if got, want := write(t, s, a), (sink.Result{Inserted: 44, Days: 4}); got != want {
		t.Errorf("first batch: %+v, want %+v", got, want)
	}
	// A replay that overlaps, with the rest.
	b := NewBatch("typed-b", nil, append(append([]sink.Record{}, orders[10:]...), payments...))
	if got, want := write(t, s, b), (sink.Result{Inserted: 20, Duplicates: 20}); got != want {
		t.Errorf("overlapping batch: %+v, want %+v", got, want)
	}
	check := func(table *recordtable.Table, recs []sink.Record, firstB int) {
		t.Helper()
		var want [][]string
		for i, r := range recs {
			batch := a.ID
			if i >= firstB {
				batch = b.ID
			}
			want = append(want, wantTyped(t, table, r, batch))
		}
		sortRows(want)
		if diff := cmp.Diff(want, ReadTyped(t, db, h.Dialect, table)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", table.Name, diff)
		}
	}
	check(tables["orders"], orders, 20)
	check(tables["payments"], payments, 10)
	// Only the untyped source is in business_records.
	var want []recordRow
	for _, r := range tickets {
		want = append(want, wantRecord(r, a.ID))
	}
	sortRecords(want)
	if diff := cmp.Diff(want, ReadRecords(t, db), approxTime); diff != "" {
		t.Errorf("business_records (-want +got):\n%s", diff)
	}
	// The typed tables keep the fields object and the payload too.
	var payload string
	if err := db.QueryRowContext(t.Context(), `SELECT payload FROM records_payments WHERE natural_key = 'pay-0002'`).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	if payload != string(payments[2].Payload) {
		t.Errorf("payload = %q, want %q", payload, payments[2].Payload)
	}
}

func testTypedRefused(t *testing.T, h Harness) {
	tables := typedTables(t, typedRules)
	s, db, _ := h.Open(t, Options{Rules: defaultRules(), Tables: tables})
	g := synth.New(synth.Config{})
	recs := Records(g, "orders", 0, 5)
	recs[3].RawFields = []byte(`{"order_id":"o-3","amount_cents":"12a"}`)
	_, err := s.Write(t.Context(), NewBatch("bad-typed", Events(g, 0, 2), recs))
	if err == nil {
		t.Fatal("Write of a record whose field does not fit its column returned nil")
	}
	if class, reason := fault.Classify(err); class != fault.Permanent || reason != proto.ReasonRejectedBySink {
		t.Errorf("Classify(%v) = %v, %q; want permanent, %q", err, class, reason, proto.ReasonRejectedBySink)
	}
	for _, w := range []string{recs[3].ID, "amount_cents", "whole number"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if n := len(ReadTyped(t, db, h.Dialect, tables["orders"])); n != 0 {
		t.Errorf("%d records loaded from a refused batch", n)
	}
	if n := len(ReadPunches(t, db, h.Dialect)); n != 0 {
		t.Errorf("%d punches loaded from a refused batch", n)
	}
}

// testTypedEvolution reopens the database as a loader restarted with a
// rules file that maps more fields: the table gains their columns (NULL in
// the rows already loaded); a field whose type changed stops the loader
// with what to fix.
func testTypedEvolution(t *testing.T, h Harness) {
	v1 := typedTables(t, "records:\n  orders:\n    fields:\n      order_id: {type: string}\n")
	s1, db, reopen := h.Open(t, Options{Rules: defaultRules(), Tables: v1})
	g := synth.New(synth.Config{})
	recs := Records(g, "orders", 0, 6)
	write(t, s1, NewBatch("v1", nil, recs[:3]))
	v2 := typedTables(t, synth.RecordTypes)
	s2, err := reopen(Options{Rules: defaultRules(), Tables: v2})
	if err != nil {
		t.Fatalf("reopen with more fields: %v", err)
	}
	write(t, s2, NewBatch("v2", nil, recs[3:]))
	var want [][]string
	for i, r := range recs {
		if i < 3 {
			row := wantTyped(t, v2["orders"], r, "v1")
			// Loaded before the columns were there: only order_id.
			for j, c := range v2["orders"].Columns {
				if c.Name != "order_id" {
					row[2+j] = "<null>"
				}
			}
			want = append(want, row)
		} else {
			want = append(want, wantTyped(t, v2["orders"], r, "v2"))
		}
	}
	sortRows(want)
	if diff := cmp.Diff(want, ReadTyped(t, db, h.Dialect, v2["orders"])); diff != "" {
		t.Errorf("records_orders after the new columns (-want +got):\n%s", diff)
	}
	v3 := typedTables(t, "records:\n  orders:\n    fields:\n      order_id: {type: int}\n")
	if _, err := reopen(Options{Rules: defaultRules(), Tables: v3}); err == nil {
		t.Error("reopen with order_id changed to int returned nil")
	} else {
		for _, w := range []string{"records_orders", "order_id", "declared int"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
	}
}

func sortRows(rows [][]string) {
	slices.SortFunc(rows, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
}

func sortRecords(rows []recordRow) {
	slices.SortFunc(rows, func(a, b recordRow) int { return strings.Compare(a.ID, b.ID) })
}

var approxTime = cmpopts.EquateApproxTime(time.Microsecond)

func defaultRules() daily.Rules { return daily.DefaultRules() }
