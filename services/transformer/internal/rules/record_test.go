package rules

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/proto"
)

const recordRules = `
default_time_zone: UTC
records:
  orders:
    natural_key: [order_id, line]
    timestamp: created
    time_zone: Europe/Berlin
    fields:
      order_id: {path: id, type: string, required: true}
      line: {path: lines.0.no, type: int, required: true}
      total: {path: totals.gross, type: number}
      paid: {path: status.paid, type: bool}
      created: {path: created_at, type: time, required: true}
      shipped: {path: shipped_at, type: time, layout: unix_ms}
      due: {path: due, type: date, layout: 02.01.2006}
      customer: {path: customer.name, type: string}
`

func record(source, key, payload string) proto.RawRecord {
	obs := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return proto.NewRawRecord(proto.RawRecord{Source: source, NaturalKey: key, ObservedAt: &obs,
		CollectedAt: obs.Add(time.Minute), RunID: "run-9", Payload: []byte(payload)})
}

func TestApplyRecord(t *testing.T) {
	r := mustParse(t, recordRules)
	created := time.Date(2026, 1, 14, 8, 30, 0, 0, time.UTC)
	observed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name       string
		rec        proto.RawRecord
		wantKey    string
		wantAt     *time.Time
		wantFields map[string]any
		wantCode   string
		wantMsg    string
	}{
		{name: "every type", rec: record("orders", "A-1", `{"id":"A-1","lines":[{"no":3}],"totals":{"gross":"12.50"},"status":{"paid":1},
			"created_at":"2026-01-14 09:30:00","shipped_at":1768383000000,"due":"31.01.2026","customer":{"name":"Zoë"}}`),
			wantKey: "A-1|3", wantAt: &created,
			wantFields: map[string]any{"order_id": "A-1", "line": int64(3), "total": 12.5, "paid": true, "created": "2026-01-14T08:30:00Z",
				"shipped": "2026-01-14T09:30:00Z", "due": "2026-01-31", "customer": "Zoë"}},
		{name: "optional fields absent or null", rec: record("orders", "A-2", `{"id":"A-2","lines":[{"no":"7"}],"created_at":"2026-01-14T08:30:00Z","customer":null}`),
			wantKey: "A-2|7", wantAt: &created,
			wantFields: map[string]any{"order_id": "A-2", "line": int64(7), "created": "2026-01-14T08:30:00Z"}},
		{name: "numbers as ids stay exact", rec: record("orders", "9007199254740993", `{"id":9007199254740993,"lines":[{"no":1.0}],"created_at":"2026-01-14T08:30:00Z"}`),
			wantKey: "9007199254740993|1", wantAt: &created,
			wantFields: map[string]any{"order_id": "9007199254740993", "line": int64(1), "created": "2026-01-14T08:30:00Z"}},
		{name: "unmapped source passes through", rec: record("tickets", "T-1", `{"anything":true}`),
			wantKey: "T-1", wantAt: &observed},
		{name: "required field missing", rec: record("orders", "A-3", `{"lines":[{"no":1}],"created_at":"2026-01-14T08:30:00Z"}`),
			wantCode: RejectMissingField, wantMsg: "required field order_id (payload path id)"},
		{name: "array index out of range", rec: record("orders", "A-4", `{"id":"A-4","lines":[],"created_at":"2026-01-14T08:30:00Z"}`),
			wantCode: RejectMissingField, wantMsg: "field line (payload path lines.0.no)"},
		{name: "wrong type", rec: record("orders", "A-5", `{"id":"A-5","lines":[{"no":"three"}],"created_at":"2026-01-14T08:30:00Z"}`),
			wantCode: RejectBadField, wantMsg: `"three" is not a whole number`},
		{name: "fraction where an int belongs", rec: record("orders", "A-6", `{"id":"A-6","lines":[{"no":1.5}],"created_at":"2026-01-14T08:30:00Z"}`),
			wantCode: RejectBadField, wantMsg: "1.5 is not a whole number"},
		{name: "bad time", rec: record("orders", "A-7", `{"id":"A-7","lines":[{"no":1}],"created_at":"yesterday"}`),
			wantCode: RejectBadField, wantMsg: "set the field's layout"},
		{name: "bad boolean", rec: record("orders", "A-8", `{"id":"A-8","lines":[{"no":1}],"created_at":"2026-01-14T08:30:00Z","status":{"paid":"maybe"}}`),
			wantCode: RejectBadField, wantMsg: "not a boolean"},
		{name: "object where a string belongs", rec: record("orders", "A-9", `{"id":{"x":1},"lines":[{"no":1}],"created_at":"2026-01-14T08:30:00Z"}`),
			wantCode: RejectBadField, wantMsg: "an object is not a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.ApplyRecord(tt.rec, proto.Lineage{RawSubject: proto.RawRecordSubject(tt.rec.Source), RawSequence: 4})
			if tt.wantCode != "" {
				var rej *Rejection
				if !errors.As(err, &rej) || rej.Code != tt.wantCode || !strings.Contains(rej.Message, tt.wantMsg) {
					t.Fatalf("ApplyRecord error = %v, want %s mentioning %q", err, tt.wantCode, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.NaturalKey != tt.wantKey {
				t.Errorf("natural key %q, want %q", got.NaturalKey, tt.wantKey)
			}
			if diff := cmp.Diff(tt.wantAt, got.OccurredAt); diff != "" {
				t.Errorf("occurred_at (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFields, got.Fields, cmp.Comparer(func(a, b map[string]any) bool { return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b) })); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			if got.ID != proto.CleanID(tt.rec.ID, r.Version) || got.Lineage.RawID != tt.rec.ID || got.Lineage.RunID != "run-9" || string(got.Payload) != string(tt.rec.Payload) {
				t.Errorf("id, lineage or payload not carried: %+v", got)
			}
			b, err := proto.Encode(&got)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := proto.DecodeCleanRecord(b); err != nil {
				t.Errorf("clean record breaks the contract: %v", err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"bad zone names its line", "default_time_zone: UTC\nsites:\n  hq:\n    time_zone: Mars/Olympus\n", "line 4: sites.hq.time_zone"},
		{"missing zone", "sites:\n  hq: {}\n", "line 2: sites.hq: time_zone is required"},
		{"unknown field", "default_time_zone: UTC\ntimezone: UTC\n", "field timezone not found"},
		{"bad state direction", "default_time_zone: UTC\nstates:\n  \"7\": sideways\n", "line 3: states.7"},
		{"bad state code", "default_time_zone: UTC\nstates:\n  \"x\": in\n", "line 3: states.x: key \"x\" must be a punch state code"},
		{"no zone at all", "", "no time zone at all"},
		{"bad duration", "default_time_zone: UTC\nmax_future: soon\n", "line 2: max_future"},
		{"bad clock threshold", "default_time_zone: UTC\nclock:\n  correct_above: -1s\n", "line 3: clock.correct_above"},
		{"shift without end", "default_time_zone: UTC\nshifts:\n  day:\n    start: \"09:00\"\n", "line 3: shifts.day: start and end are required"},
		{"bad shift time", "default_time_zone: UTC\nshifts:\n  day:\n    start: \"9am\"\n    end: \"17:00\"\n", "line 4: shifts.day.start: \"9am\" is not a time of day"},
		{"zero-length shift", "default_time_zone: UTC\nshifts:\n  day:\n    start: \"09:00\"\n    end: \"09:00\"\n", "line 5: shifts.day.end: equals start"},
		{"window too long", "default_time_zone: UTC\nshifts:\n  long:\n    start: \"06:00\"\n    end: \"22:00\"\n    latest_punch: 7h\n", "line 3: shifts.long: earliest_punch + shift + latest_punch is 25h0m0s"},
		{"break outside the shift", "default_time_zone: UTC\nshifts:\n  day:\n    start: \"09:00\"\n    end: \"17:00\"\n    breaks:\n      - {start: \"18:00\", end: \"18:30\"}\n", "line 6: shifts.day.breaks: break 1 (18:00-18:30) must lie inside"},
		{"breaks out of order", "default_time_zone: UTC\nshifts:\n  day:\n    start: \"09:00\"\n    end: \"17:00\"\n    breaks:\n      - {start: \"13:00\", end: \"13:30\"}\n      - {start: \"10:00\", end: \"10:15\"}\n", "break 2 overlaps or precedes break 1"},
		{"bad day", "default_time_zone: UTC\nshifts:\n  day:\n    start: \"09:00\"\n    end: \"17:00\"\n    days: [funday]\n", "line 6: shifts.day.days: \"funday\" is not a day of the week"},
		{"bad rounding", "default_time_zone: UTC\nrounding:\n  in: {unit: 2h, mode: sideways}\n", "line 3: rounding.in.unit: \"2h\" must be a duration from 1s to 1h"},
		{"bad rounding mode", "default_time_zone: UTC\nrounding:\n  out: {unit: 15m, mode: sideways}\n", "rounding.out.mode: \"sideways\": use up, down or nearest"},
		{"unknown shift in assignments", "default_time_zone: UTC\nassignments:\n  departments:\n    ops: graveyard\n", "line 4: assignments.departments.ops: shift \"graveyard\" is not listed"},
		{"unknown site shift", "sites:\n  hq:\n    time_zone: UTC\n    shift: graveyard\n", "line 4: sites.hq.shift: shift \"graveyard\""},
		{"unknown calendar", "sites:\n  hq:\n    time_zone: UTC\n    holidays: [xmas]\n", "line 4: sites.hq.holidays: calendar \"xmas\""},
		{"bad holiday date", "default_time_zone: UTC\nholidays:\n  us:\n    2026-13-01: Nope\n", "line 4: holidays.us.2026-13-01"},
		{"unknown model", "default_time_zone: UTC\ndevices:\n  X1: {model: nope}\n", "line 3: devices.X1.model: model \"nope\""},
		{"duplicate prefix", "default_time_zone: UTC\nmodels:\n  a: {serial_prefixes: [CQ]}\n  b: {serial_prefixes: [CQ]}\n", "prefix \"CQ\" is also listed for model a"},
		{"record without fields", "default_time_zone: UTC\nrecords:\n  orders: {}\n", "line 3: records.orders.fields: list at least one field"},
		{"record field type", "default_time_zone: UTC\nrecords:\n  orders:\n    fields:\n      id: {type: uuid}\n", "line 5: records.orders.fields.id.type: \"uuid\""},
		{"record timestamp not a time", "default_time_zone: UTC\nrecords:\n  orders:\n    timestamp: id\n    fields:\n      id: {type: string}\n", "line 4: records.orders.timestamp: \"id\" must name a field of type time"},
		{"record natural key unknown", "default_time_zone: UTC\nrecords:\n  orders:\n    natural_key: [nr]\n    fields:\n      id: {type: string}\n", "line 4: records.orders.natural_key: \"nr\" is not one of the fields"},
		{"several errors at once", "default_time_zone: Nowhere\nmax_future: soon\n", "line 2: max_future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
