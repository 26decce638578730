// Package sinktest holds the behaviour every sink.Sink must show, as tests
// that each sink package runs against its real database: business records
// round trip, daily attendance always equal to a recomputation from the
// punch table whatever the order and the replays, concurrent writers, and
// refused rows. It also gives the proof tests their checks.
package sinktest

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
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

// Dialect says how to read a sink's tables back through database/sql.
type Dialect struct {
	Name string
	// Date renders a date column as YYYY-MM-DD text.
	Date func(column string) string
	// Quote quotes a column name.
	Quote string
}

// The dialects of the three sinks.
var (
	Postgres = Dialect{Name: "postgres", Quote: `"`, Date: func(c string) string { return "to_char(" + c + ", 'YYYY-MM-DD')" }}
	MySQL    = Dialect{Name: "mysql", Quote: "`", Date: func(c string) string { return "DATE_FORMAT(" + c + ", '%Y-%m-%d')" }}
	SQLite   = Dialect{Name: "sqlite", Quote: `"`, Date: func(c string) string { return c }}
)

// Harness opens a sink on a fresh database.
type Harness struct {
	Dialect Dialect
	// Open returns a new Sink with the given options on a fresh database,
	// a handle on that database to read it back, and a function that opens
	// another Sink on the same database (as a loader restarted with new
	// options would). The test's cleanup closes them all.
	Open func(t *testing.T, o Options) (s sink.Sink, db *sql.DB, reopen func(Options) (sink.Sink, error))
}

// Options are what a sink is opened with.
type Options struct {
	Rules  daily.Rules
	Tables recordtable.Set
}

// open opens a sink with rules and no typed tables.
func (h Harness) open(t *testing.T, rules daily.Rules) (sink.Sink, *sql.DB) {
	s, db, _ := h.Open(t, Options{Rules: rules})
	return s, db
}

// Run runs every conformance test as a subtest of t.
func Run(t *testing.T, h Harness) {
	t.Run("records", func(t *testing.T) { testRecords(t, h) })
	t.Run("daily in any order with replays", func(t *testing.T) { testDailyAnyOrder(t, h) })
	t.Run("daily with concurrent writers", func(t *testing.T) { testDailyConcurrent(t, h) })
	t.Run("daily in stream order, then under new rules", func(t *testing.T) { testDailyStreamAndNewRules(t, h) })
	t.Run("events and records in one batch", func(t *testing.T) { testMixed(t, h) })
	t.Run("refused record", func(t *testing.T) { testRefusedRecord(t, h) })
	t.Run("refused event", func(t *testing.T) { testRefusedEvent(t, h) })
	t.Run("schema 1.1 fields", func(t *testing.T) { testSchema11(t, h) })
	t.Run("replay moves punches to other days", func(t *testing.T) { testReplayMoves(t, h) })
	t.Run("concurrent replays of the same punches", func(t *testing.T) { testConcurrentReplays(t, h) })
	t.Run("typed record tables", func(t *testing.T) { testTypedRecords(t, h) })
	t.Run("typed record refused", func(t *testing.T) { testTypedRefused(t, h) })
	t.Run("typed record tables gain columns", func(t *testing.T) { testTypedEvolution(t, h) })
}

// NewBatch returns a batch of events and records with its sequence range.
func NewBatch(id string, events []sink.Event, records []sink.Record) sink.Batch {
	b := sink.Batch{ID: id, Sink: "test", Events: events, Records: records, Started: time.Now().Add(-time.Second)}
	for _, e := range events {
		b.FirstSeq, b.LastSeq = minSeq(b.FirstSeq, e.Seq), max(b.LastSeq, e.Seq)
	}
	for _, r := range records {
		b.FirstSeq, b.LastSeq = minSeq(b.FirstSeq, r.Seq), max(b.LastSeq, r.Seq)
	}
	return b
}

func minSeq(a, b uint64) uint64 {
	if a == 0 {
		return b
	}
	return min(a, b)
}

// Events returns n synthetic events from g numbered from first, with CLEAN
// sequences first+1...
func Events(g *synth.Generator, first, n int) []sink.Event {
	out := make([]sink.Event, n)
	for i := range out {
		out[i] = sink.Event{AttendanceEvent: g.Event(first + i), Seq: uint64(first + i + 1)}
	}
	return out
}

// Records returns n synthetic records of source from g numbered from first,
// with CLEAN sequences 100000+first+1...
func Records(g *synth.Generator, source string, first, n int) []sink.Record {
	out := make([]sink.Record, n)
	for i := range out {
		out[i] = sink.Record{CleanRecord: g.Record(source, first+i), Seq: uint64(100000 + first + i + 1)}
	}
	return out
}

func write(t *testing.T, s sink.Sink, b sink.Batch) sink.Result {
	t.Helper()
	res, err := s.Write(t.Context(), b)
	if err != nil {
		t.Fatalf("Write(%s): %v", b.ID, err)
	}
	return res
}

// recordRow is one business_records row as read back.
type recordRow struct {
	ID, RulesVersion, Source, NaturalKey string
	OccurredAt                           time.Time
	Fields                               any // decoded, numbers as json.Number
	Payload                              string
	RawID                                string
	CleanSequence                        int64
	BatchID                              string
}

func wantRecord(r sink.Record, batchID string) recordRow {
	var at time.Time
	if r.OccurredAt != nil {
		at = r.OccurredAt.UTC()
	}
	fields, err := r.FieldsJSON()
	if err != nil {
		panic(err)
	}
	return recordRow{ID: r.ID, RulesVersion: r.RulesVersion, Source: r.Source, NaturalKey: r.NaturalKey,
		OccurredAt: at, Fields: decodeJSON(fields), Payload: string(r.Payload), RawID: r.Lineage.RawID,
		CleanSequence: int64(r.Seq), BatchID: batchID}
}

func decodeJSON(b []byte) any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return fmt.Sprintf("invalid JSON %q: %v", b, err)
	}
	return v
}

// ReadRecords reads business_records ordered by id.
func ReadRecords(t testing.TB, db *sql.DB) []recordRow {
	t.Helper()
	rs, err := db.QueryContext(t.Context(), `SELECT id, rules_version, source, natural_key, occurred_at,
		fields, payload, raw_id, clean_sequence, batch_id FROM business_records ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []recordRow
	for rs.Next() {
		var (
			r             recordRow
			at            any
			fields, payld []byte
		)
		if err := rs.Scan(&r.ID, &r.RulesVersion, &r.Source, &r.NaturalKey, &at, &fields, &payld, &r.RawID, &r.CleanSequence, &r.BatchID); err != nil {
			t.Fatal(err)
		}
		r.OccurredAt = Instant(t, at)
		r.Fields = decodeJSON(fields)
		r.Payload = string(payld)
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Instant normalises an instant as a driver returns it (time.Time, or
// RFC 3339 text from SQLite) to UTC; NULL is the zero time.
func Instant(t testing.TB, v any) time.Time {
	t.Helper()
	switch x := v.(type) {
	case nil:
		return time.Time{}
	case time.Time:
		return x.UTC()
	case string:
		return parseInstant(t, x)
	case []byte:
		return parseInstant(t, string(x))
	}
	t.Fatalf("instant of type %T: %v", v, v)
	return time.Time{}
}

func parseInstant(t testing.TB, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("instant %q: %v", s, err)
	}
	return at.UTC()
}

// ReadPunches reads every punch of attendance_events, by day.
func ReadPunches(t testing.TB, db *sql.DB, d Dialect) map[daily.Key][]daily.Punch {
	t.Helper()
	rs, err := db.QueryContext(t.Context(), `SELECT site, user_id, `+d.Date("work_date")+`, `+PunchColumns+` FROM attendance_events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	out := map[daily.Key][]daily.Punch{}
	for rs.Next() {
		var (
			k  daily.Key
			p  daily.Punch
			at any
		)
		if err := rs.Scan(&k.Site, &k.UserID, &k.WorkDate, &p.RawID, &p.CleanSeq, &p.PersonID, &at, &p.TimeZone, &p.Direction,
			&p.Shift, &p.LateMinutes, &p.EarlyLeaveMinutes, &p.OvertimeMinutes); err != nil {
			t.Fatal(err)
		}
		p.OccurredAt = Instant(t, at)
		out[k] = append(out[k], p)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// DayRow is a daily_attendance row with the batch that last wrote it.
type DayRow struct {
	daily.Day
	BatchID string
}

// ReadDays reads daily_attendance sorted by key.
func ReadDays(t testing.TB, db *sql.DB, d Dialect) []DayRow {
	t.Helper()
	rs, err := db.QueryContext(t.Context(), `SELECT site, user_id, `+d.Date("work_date")+`, `+DayColumns+`, batch_id FROM daily_attendance`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []DayRow
	for rs.Next() {
		var (
			r           DayRow
			first, last any
		)
		if err := rs.Scan(&r.Site, &r.UserID, &r.WorkDate, &r.PersonID, &r.TimeZone, &first, &last,
			&r.WorkedMinutes, &r.LateMinutes, &r.EarlyLeaveMinutes, &r.OvertimeMinutes, &r.Shift,
			&r.PunchCount, &r.DoublePunches, &r.BatchID); err != nil {
			t.Fatal(err)
		}
		r.FirstIn, r.LastOut = Instant(t, first), Instant(t, last)
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, func(a, b DayRow) int { return a.Key.Compare(b.Key) })
	return out
}

// days drops the batch ids.
func days(rows []DayRow) []daily.Day {
	out := make([]daily.Day, len(rows))
	for i, r := range rows {
		out[i] = r.Day
	}
	return out
}

// CheckDaily compares daily_attendance with a recomputation of every day
// from the punches in attendance_events that count (daily.Counted: the
// latest version of each) under rules, and returns the
// number of days. Instants compare to the microsecond, the resolution of
// PostgreSQL and MySQL.
func CheckDaily(t testing.TB, db *sql.DB, d Dialect, rules daily.Rules) int {
	t.Helper()
	want, err := daily.New(rules).Days(daily.Counted(ReadPunches(t, db, d)))
	if err != nil {
		t.Fatal(err)
	}
	got := days(ReadDays(t, db, d))
	if diff := DiffDays(want, got); diff != "" {
		t.Errorf("daily_attendance differs from a recomputation from attendance_events (-recomputed +table):\n%s", diff)
	}
	return len(got)
}

// DiffDays compares two sorted lists of days, instants to the microsecond,
// and describes the first differences, or returns "". It is quick on lists
// of many thousands of days.
func DiffDays(want, got []daily.Day) string {
	opts := []cmp.Option{cmpopts.EquateEmpty(), cmpopts.EquateApproxTime(time.Microsecond)}
	same := func(a, b daily.Day) bool {
		return a.Key == b.Key && a.PersonID == b.PersonID && a.TimeZone == b.TimeZone &&
			sameInstant(a.FirstIn, b.FirstIn) && sameInstant(a.LastOut, b.LastOut) &&
			a.WorkedMinutes == b.WorkedMinutes && a.LateMinutes == b.LateMinutes &&
			a.EarlyLeaveMinutes == b.EarlyLeaveMinutes && a.OvertimeMinutes == b.OvertimeMinutes && a.Shift == b.Shift &&
			a.PunchCount == b.PunchCount && a.DoublePunches == b.DoublePunches
	}
	if len(want) == len(got) {
		var diffs []string
		for i := range want {
			if !same(want[i], got[i]) {
				diffs = append(diffs, cmp.Diff(want[i], got[i], opts...))
				if len(diffs) == 5 {
					break
				}
			}
		}
		return strings.Join(diffs, "\n")
	}
	return fmt.Sprintf("%d days, want %d:\n%s", len(got), len(want), cmp.Diff(want[:min(len(want), 20)], got[:min(len(got), 20)], opts...))
}

func sameInstant(a, b time.Time) bool {
	d := a.Sub(b)
	return a.IsZero() == b.IsZero() && d > -time.Microsecond && d < time.Microsecond
}

// PunchColumns are the punch table's columns a summary reads, after the
// day's key, in the order ScanPunch takes them.
const PunchColumns = `raw_id, clean_sequence, coalesce(person_id, ''), occurred_at, time_zone, direction,
	shift, late_minutes, early_leave_minutes, overtime_minutes`

// DayColumns are daily_attendance's columns after the key, in the order
// ReadDays scans them.
const DayColumns = `coalesce(person_id, ''), time_zone, first_in, last_out, worked_minutes, late_minutes,
	early_leave_minutes, overtime_minutes, shift, punch_count, double_punches`

// expectedDays computes the days of evs directly, without a database.
func expectedDays(t testing.TB, rules daily.Rules, evs []sink.Event) []daily.Day {
	t.Helper()
	punches := map[daily.Key][]daily.Punch{}
	for _, e := range evs {
		k := daily.Key{Site: e.Site, UserID: e.UserID, WorkDate: e.WorkDate}
		punches[k] = append(punches[k], daily.PunchOf(e.AttendanceEvent, int64(e.Seq)))
	}
	out, err := daily.New(rules).Days(daily.Counted(punches))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testRecords(t *testing.T, h Harness) {
	s, db := h.open(t, daily.DefaultRules())
	g := synth.New(synth.Config{})
	recs := Records(g, "orders", 0, 40)
	// A record without a time, one without fields, and one whose fields
	// travelled with a number a float64 cannot hold.
	recs[1].OccurredAt = nil
	recs[2].Fields = nil
	recs[3].RawFields = []byte(`{"amount_cents": 12345678901234567890, "note": "ünïcode ✓"}`)
	a := NewBatch("rec-a", nil, recs[:30])
	if got, want := write(t, s, a), (sink.Result{Inserted: 30}); got != want {
		t.Errorf("first batch: %+v, want %+v", got, want)
	}
	b := NewBatch("rec-b", nil, recs[20:])
	if got, want := write(t, s, b), (sink.Result{Inserted: 10, Duplicates: 10}); got != want {
		t.Errorf("overlapping batch: %+v, want %+v", got, want)
	}
	var want []recordRow
	for i, r := range recs {
		batch := a.ID
		if i >= 30 {
			batch = b.ID
		}
		want = append(want, wantRecord(r, batch))
	}
	slices.SortFunc(want, func(x, y recordRow) int { return strings.Compare(x.ID, y.ID) })
	if diff := cmp.Diff(want, ReadRecords(t, db), cmpopts.EquateApproxTime(time.Microsecond)); diff != "" {
		t.Errorf("business_records (-want +got):\n%s", diff)
	}
	if n := len(ReadDays(t, db, h.Dialect)); n != 0 {
		t.Errorf("records made %d daily rows", n)
	}
}

func testDailyAnyOrder(t *testing.T, h Harness) {
	rules := daily.Rules{Debounce: time.Minute, ShiftStart: daily.Clock{Hour: 8, Minute: 15},
		SiteShiftStart: map[string]daily.Clock{"depot": {Hour: 7}}, LateGrace: 2 * time.Minute}
	s, db := h.open(t, rules)
	// 9 users, 4 punches a day, 3 days (Berlin and New York change to
	// summer time on the way), every 7th punch a double punch.
	g := synth.New(synth.Config{Users: 9, DoubleEvery: 7})
	evs := Events(g, 0, 9*4*3)
	rnd := rand.New(rand.NewPCG(5, 5))
	shuffled := slices.Clone(evs)
	rnd.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	// Batches of random sizes out of order; every third batch is written
	// again (a redelivery), and a batch repeats part of the one before (a
	// replay overlapping new events).
	total := sink.Result{}
	for i, at := 0, 0; at < len(shuffled); i++ {
		n := 1 + rnd.IntN(15)
		part := shuffled[at:min(at+n, len(shuffled))]
		if at > 5 && i%4 == 0 {
			part = append(slices.Clone(shuffled[at-3:at]), part...)
		}
		at += n
		res := write(t, s, NewBatch(fmt.Sprintf("b%d", i), part, nil))
		total.Inserted += res.Inserted
		if i%3 == 0 {
			again := write(t, s, NewBatch(fmt.Sprintf("b%d-again", i), part, nil))
			if again.Inserted != 0 || again.Days != 0 || again.Duplicates != len(part) {
				t.Errorf("redelivered batch %d: %+v, want %d duplicates and no day", i, again, len(part))
			}
		}
	}
	if total.Inserted != len(evs) {
		t.Errorf("inserted %d events in all, want %d", total.Inserted, len(evs))
	}
	n := CheckDaily(t, db, h.Dialect, rules)
	want := expectedDays(t, rules, evs)
	if diff := cmp.Diff(want, days(ReadDays(t, db, h.Dialect)), cmpopts.EquateApproxTime(time.Microsecond)); diff != "" {
		t.Errorf("daily_attendance differs from the days computed from the events themselves (-want +got):\n%s", diff)
	}
	if n != 9*3 {
		t.Errorf("%d days, want 27", n)
	}
	var late, doubles, shifted, early int
	for _, d := range want {
		late += d.LateMinutes
		doubles += d.DoublePunches
		early += d.EarlyLeaveMinutes + d.OvertimeMinutes
		if d.Shift != "" {
			shifted++
		}
	}
	if late == 0 || doubles == 0 || shifted == 0 || shifted == len(want) || early == 0 {
		t.Errorf("the data exercise too little: %d late minutes, %d double punches, %d of %d days with the transformer's shift, %d early-leave and overtime minutes",
			late, doubles, shifted, len(want), early)
	}
	// A replay of everything changes no day, not even its batch id.
	before := ReadDays(t, db, h.Dialect)
	res := write(t, s, NewBatch("replay-all", evs, nil))
	if res.Inserted != 0 || res.Days != 0 {
		t.Errorf("replay of everything: %+v, want nothing inserted and no day", res)
	}
	if diff := cmp.Diff(before, ReadDays(t, db, h.Dialect)); diff != "" {
		t.Errorf("a replay changed daily_attendance (-before +after):\n%s", diff)
	}
}

func testDailyConcurrent(t *testing.T, h Harness) {
	rules := daily.DefaultRules()
	s, db := h.open(t, rules)
	g := synth.New(synth.Config{Users: 6, DoubleEvery: 5})
	evs := Events(g, 0, 6*4*2)
	const writers = 4
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for w := range writers {
		wg.Go(func() {
			// Each writer loads every event, in its own order, in small
			// batches: the same days are recomputed concurrently.
			rnd := rand.New(rand.NewPCG(uint64(w), 9))
			mine := slices.Clone(evs)
			rnd.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
			for i := 0; i < len(mine); i += 5 {
				_, err := s.Write(t.Context(), NewBatch(fmt.Sprintf("w%d-%d", w, i), mine[i:min(i+5, len(mine))], nil))
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		// A deadlock or serialization failure is transient: the loader
		// retries it. Anything else is a bug.
		if class, _ := fault.Classify(err); class != fault.Transient {
			t.Fatalf("Write: %v", err)
		}
		t.Logf("transient failures (retried by the loader): %v", err)
		for i := 0; i < len(evs); i += 5 {
			write(t, s, NewBatch(fmt.Sprintf("retry-%d", i), evs[i:min(i+5, len(evs))], nil))
		}
	}
	CheckDaily(t, db, h.Dialect, rules)
	if diff := cmp.Diff(expectedDays(t, rules, evs), days(ReadDays(t, db, h.Dialect)), cmpopts.EquateApproxTime(time.Microsecond)); diff != "" {
		t.Errorf("daily_attendance after concurrent writers (-want +got):\n%s", diff)
	}
}

// testDailyStreamAndNewRules loads a workforce's punches in the order a
// stream delivers them (each day grows batch after batch, which a sink may
// extend without reading the day again), with a late punch now and then,
// then the same punches again processed under a new rules version (new
// clean ids, the same raw ids, another shift): every day must equal a
// summary of its latest versions.
func testDailyStreamAndNewRules(t *testing.T, h Harness) {
	rules := daily.Rules{Debounce: time.Minute, ShiftStart: daily.Clock{Hour: 8, Minute: 15}, LateGrace: 2 * time.Minute}
	s, db := h.open(t, rules)
	g := synth.New(synth.Config{Users: 7, DoubleEvery: 6})
	evs := Events(g, 0, 7*4*3)
	// Every 10th punch arrives four batches late.
	var late []sink.Event
	for i := 0; i < len(evs); i += 5 {
		part := evs[i:min(i+5, len(evs))]
		var now []sink.Event
		for j, e := range part {
			if (i+j)%10 == 3 {
				late = append(late, e)
			} else {
				now = append(now, e)
			}
		}
		if len(late) > 0 && (i/5)%4 == 3 {
			now, late = append(now, late...), nil
		}
		write(t, s, NewBatch(fmt.Sprintf("s%d", i), now, nil))
	}
	write(t, s, NewBatch("late", late, nil))
	CheckDaily(t, db, h.Dialect, rules)
	if diff := cmp.Diff(expectedDays(t, rules, evs), days(ReadDays(t, db, h.Dialect)), cmpopts.EquateApproxTime(time.Microsecond)); diff != "" {
		t.Fatalf("daily_attendance after loading in stream order (-want +got):\n%s", diff)
	}

	// Replayed under rules v2: the transformer now assigns every punch a
	// shift with its own minutes. Half the days get their new versions.
	g2 := synth.New(synth.Config{Users: 7, DoubleEvery: 6, RulesVersion: "rules-v2"})
	var again []sink.Event
	for _, e := range Events(g2, 0, 7*4*3) {
		if e.Lineage.RawID == "" || (len(e.UserID) > 0 && e.UserID[len(e.UserID)-1]%2 == 0) {
			continue
		}
		e.Seq += 10000
		e.Shift, e.LateMinutes, e.EarlyLeaveMinutes, e.OvertimeMinutes = "night", 3, 4, 5
		again = append(again, e)
	}
	if len(again) == 0 {
		t.Fatal("no event replayed")
	}
	for i := 0; i < len(again); i += 9 {
		write(t, s, NewBatch(fmt.Sprintf("v2-%d", i), again[i:min(i+9, len(again))], nil))
	}
	CheckDaily(t, db, h.Dialect, rules)
	got := days(ReadDays(t, db, h.Dialect))
	if diff := cmp.Diff(expectedDays(t, rules, append(slices.Clone(evs), again...)), got, cmpopts.EquateApproxTime(time.Microsecond)); diff != "" {
		t.Errorf("daily_attendance after a replay under new rules (-want +got):\n%s", diff)
	}
	night := 0
	for _, d := range got {
		if d.Shift == "night" {
			night++
		}
	}
	if night == 0 || night == len(got) {
		t.Errorf("%d of %d days on the new rules' shift, want some but not all", night, len(got))
	}
}

func testMixed(t *testing.T, h Harness) {
	rules := daily.DefaultRules()
	s, db := h.open(t, rules)
	g := synth.New(synth.Config{Users: 5})
	evs := Events(g, 0, 20)
	recs := Records(g, "tickets", 0, 20)
	if got, want := write(t, s, NewBatch("m1", evs[:10], recs[:10])), (sink.Result{Inserted: 20, Days: 5}); got != want {
		t.Errorf("first batch: %+v, want %+v", got, want)
	}
	// Records collide, events are new; then the other way round.
	if got, want := write(t, s, NewBatch("m2", evs[10:15], recs[5:15])), (sink.Result{Inserted: 10, Duplicates: 5, Days: 5}); got != want {
		t.Errorf("records colliding: %+v, want %+v", got, want)
	}
	if got, want := write(t, s, NewBatch("m3", evs[12:20], recs[15:])), (sink.Result{Inserted: 10, Duplicates: 3, Days: 5}); got != want {
		t.Errorf("events colliding: %+v, want %+v", got, want)
	}
	if n := len(ReadRecords(t, db)); n != 20 {
		t.Errorf("%d business records, want 20", n)
	}
	if diff := cmp.Diff(expectedDays(t, rules, evs), days(ReadDays(t, db, h.Dialect)), cmpopts.EquateApproxTime(time.Microsecond)); diff != "" {
		t.Errorf("daily_attendance (-want +got):\n%s", diff)
	}
}

func testRefusedRecord(t *testing.T, h Harness) {
	s, db := h.open(t, daily.DefaultRules())
	g := synth.New(synth.Config{})
	recs := Records(g, "orders", 0, 5)
	recs[3].RawFields = []byte(`{"amount": 12,`) // cut short
	_, err := s.Write(t.Context(), NewBatch("bad", Events(g, 0, 3), recs))
	if err == nil {
		t.Fatal("Write of a record with broken fields returned nil")
	}
	if class, reason := fault.Classify(err); class != fault.Permanent || reason != proto.ReasonRejectedBySink {
		t.Errorf("Classify(%v) = %v, %q; want permanent, %q", err, class, reason, proto.ReasonRejectedBySink)
	}
	if n := len(ReadRecords(t, db)); n != 0 {
		t.Errorf("%d records loaded from a refused batch", n)
	}
	if n := len(ReadPunches(t, db, h.Dialect)); n != 0 {
		t.Errorf("%d punches loaded from a refused batch", n)
	}
	if n := len(ReadDays(t, db, h.Dialect)); n != 0 {
		t.Errorf("%d days written by a refused batch", n)
	}
	// The rest loads.
	recs = append(recs[:3], recs[4:]...)
	if got, want := write(t, s, NewBatch("good", Events(g, 0, 3), recs)), (sink.Result{Inserted: 7, Days: 3}); got != want {
		t.Errorf("without the bad record: %+v, want %+v", got, want)
	}
}

func testRefusedEvent(t *testing.T, h Harness) {
	g := synth.New(synth.Config{Users: 4})
	tests := []struct {
		name    string
		preload bool // load the batch's first 5 events first, so that it holds duplicates
		change  func(*sink.Event)
	}{
		{name: "state out of range", change: func(e *sink.Event) { e.State = 300 }},
		{name: "state out of range among duplicates", preload: true, change: func(e *sink.Event) { e.State = 300 }},
		{name: "id longer than 64", change: func(e *sink.Event) { e.ID = strings.Repeat("x", 65) }},
		{name: "direction outside the check", preload: true, change: func(e *sink.Event) { e.Direction = "sideways" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, db := h.open(t, daily.DefaultRules())
			evs := Events(g, 0, 12)
			if tt.preload {
				write(t, s, NewBatch("pre", evs[:5], nil))
			}
			bad := slices.Clone(evs)
			tt.change(&bad[9])
			_, err := s.Write(t.Context(), NewBatch("bad", bad, nil))
			if err == nil {
				t.Fatal("Write returned nil, want a permanent error")
			}
			if class, reason := fault.Classify(err); class != fault.Permanent || reason != proto.ReasonRejectedBySink {
				t.Errorf("Classify(%v) = %v, %q; want permanent, %q", err, class, reason, proto.ReasonRejectedBySink)
			}
			want := 0
			if tt.preload {
				want = 5
			}
			if n := len(punchIDs(t, db)); n != want {
				t.Errorf("%d punches after the refused batch, want %d", n, want)
			}
			var failed int
			if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM load_batches WHERE batch_id = 'bad' AND outcome = 'failed'`).Scan(&failed); err != nil || failed != 1 {
				t.Errorf("load_batches has %d failed rows for the batch (%v), want 1", failed, err)
			}
			// Without the bad event the rest loads.
			good := append(slices.Clone(evs[:9]), evs[10:]...)
			if res := write(t, s, NewBatch("good", good, nil)); res.Inserted != 11-want {
				t.Errorf("without the bad event: %+v, want %d inserted", res, 11-want)
			}
		})
	}
}

// punchIDs reads the ids in attendance_events.
func punchIDs(t testing.TB, db *sql.DB) []string {
	t.Helper()
	rs, err := db.QueryContext(t.Context(), `SELECT id FROM attendance_events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// shiftRow is what attendance_events keeps of schema 1.1's fields.
type shiftRow struct {
	ID, Department, RosterVersion, Shift string
	ShiftStart, ShiftEnd, RoundedAt      time.Time
	Late, Early, Overtime                int
	ClockOffsetMS                        int64
}

func testSchema11(t *testing.T, h Harness) {
	s, db := h.open(t, daily.DefaultRules())
	g := synth.New(synth.Config{Users: 30})
	evs := Events(g, 0, 120)
	write(t, s, NewBatch("v11", evs, nil))
	var want []shiftRow
	opt := func(p *time.Time) time.Time {
		if p == nil {
			return time.Time{}
		}
		return p.UTC()
	}
	var shifted, rounded, corrected int
	for _, e := range evs {
		want = append(want, shiftRow{ID: e.ID, Department: e.Department, RosterVersion: e.RosterVersion, Shift: e.Shift,
			ShiftStart: opt(e.ShiftStart), ShiftEnd: opt(e.ShiftEnd), RoundedAt: opt(e.RoundedAt),
			Late: e.LateMinutes, Early: e.EarlyLeaveMinutes, Overtime: e.OvertimeMinutes, ClockOffsetMS: e.ClockOffsetMS})
		if e.Shift != "" {
			shifted++
		}
		if e.RoundedAt != nil {
			rounded++
		}
		if e.ClockOffsetMS != 0 {
			corrected++
		}
	}
	if shifted == 0 || rounded == 0 || corrected == 0 {
		t.Fatalf("the data exercise too little: %d shifted, %d rounded, %d clock-corrected events", shifted, rounded, corrected)
	}
	slices.SortFunc(want, func(a, b shiftRow) int { return strings.Compare(a.ID, b.ID) })
	rs, err := db.QueryContext(t.Context(), `SELECT id, department, roster_version, shift, shift_start, shift_end, rounded_at,
		late_minutes, early_leave_minutes, overtime_minutes, clock_offset_ms FROM attendance_events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var got []shiftRow
	for rs.Next() {
		var (
			r              shiftRow
			start, end, r2 any
		)
		if err := rs.Scan(&r.ID, &r.Department, &r.RosterVersion, &r.Shift, &start, &end, &r2, &r.Late, &r.Early, &r.Overtime, &r.ClockOffsetMS); err != nil {
			t.Fatal(err)
		}
		r.ShiftStart, r.ShiftEnd, r.RoundedAt = Instant(t, start), Instant(t, end), Instant(t, r2)
		got = append(got, r)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateApproxTime(time.Microsecond)); diff != "" {
		t.Errorf("schema 1.1 columns of attendance_events (-want +got):\n%s", diff)
	}
}

// ClassifyCase is an error a sink may meet and the class its classify
// must give it.
type ClassifyCase struct {
	Name string
	Err  error
	Want fault.Class
}

// CheckClassify checks a sink's classify on cases (see CheckClass), on an
// error that is already permanent, and on nil.
func CheckClassify(t *testing.T, classify func(error) error, cases []ClassifyCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) { CheckClass(t, tt.Err, classify(tt.Err), tt.Want) })
	}
	t.Run("already permanent", func(t *testing.T) {
		already := fault.NewPermanent(proto.ReasonRejectedBySink, errors.New("bad flag"))
		CheckClass(t, already, classify(already), fault.Permanent)
	})
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

// CheckClass checks what a sink's classify made of orig: the class, the
// reason of a permanent failure (rejected by the sink), and that the
// original error is wrapped.
func CheckClass(t *testing.T, orig, classified error, want fault.Class) {
	t.Helper()
	got, reason := fault.Classify(classified)
	if got != want {
		t.Errorf("class of %v = %v, want %v", orig, got, want)
	}
	if got == fault.Permanent && reason != proto.ReasonRejectedBySink {
		t.Errorf("reason = %q, want %q", reason, proto.ReasonRejectedBySink)
	}
	if !errors.Is(classified, orig) {
		t.Error("classified error does not wrap the original")
	}
}

// testReplayMoves loads two days of punches, then a replay of all of them
// under new rules (new ids, marked reprocessed) that moves some to the next
// work date, in three batches, one of them twice: every day equals a
// recomputation from the latest version of each punch, a punch is counted
// on one day only, and a day whose punches all moved away to another work
// date has no row. The first rules applied again, under a new rules
// version, win in turn (the highest CLEAN sequence counts).
func testReplayMoves(t *testing.T, h Harness) {
	rules := daily.Rules{Debounce: time.Minute, ShiftStart: daily.Clock{Hour: 8}}
	s, db := h.open(t, rules)
	g := synth.New(synth.Config{Users: 6})
	evs := Events(g, 0, 48) // 2 days of 6 users, 4 punches each
	write(t, s, NewBatch("v1", evs, nil))
	var replay []sink.Event
	moved := map[string]bool{} // raw ids
	for i, e := range evs {
		date := e.WorkDate
		// Every punch of user 0001 on the first day, and some others.
		if e.UserID == "00001" && e.WorkDate == evs[0].WorkDate || i%7 == 3 {
			date = addDays(t, date, 1)
			moved[e.Lineage.RawID] = true
		}
		replay = append(replay, reprocessed(e, "rules-v2", 1000+i, date))
	}
	write(t, s, NewBatch("v2-a", replay[:16], nil))
	write(t, s, NewBatch("v2-b", replay[16:32], nil))
	write(t, s, NewBatch("v2-b-again", replay[16:32], nil))
	write(t, s, NewBatch("v2-c", replay[32:], nil))
	if n := CheckDaily(t, db, h.Dialect, rules); n == 0 {
		t.Fatal("no daily attendance")
	}
	all := append(slices.Clone(evs), replay...)
	if diff := DiffDays(expectedDays(t, rules, all), days(ReadDays(t, db, h.Dialect))); diff != "" {
		t.Errorf("after the replay (-expected +table):\n%s", diff)
	}
	counted := 0
	for _, d := range ReadDays(t, db, h.Dialect) {
		counted += d.PunchCount + d.DoublePunches
		if d.UserID == "00001" && d.WorkDate == evs[0].WorkDate {
			t.Errorf("day %v, whose punches all moved, still has a row: %+v", d.Key, d)
		}
	}
	if counted != len(evs) {
		t.Errorf("the days count %d punches, want each of the %d once", counted, len(evs))
	}
	// The first rules applied again (a new file, so a new rules version and
	// new ids), replayed last: they win, and the moved punches go back.
	var again []sink.Event
	for i, e := range evs {
		if moved[e.Lineage.RawID] {
			again = append(again, reprocessed(e, "rules-v3", 2000+i, e.WorkDate))
		}
	}
	write(t, s, NewBatch("v3", again, nil))
	CheckDaily(t, db, h.Dialect, rules)
	all = append(all, again...)
	if diff := DiffDays(expectedDays(t, rules, all), days(ReadDays(t, db, h.Dialect))); diff != "" {
		t.Errorf("after the old rules replayed last (-expected +table):\n%s", diff)
	}
	// Both versions of new punches in one batch (a redelivery after a
	// rules reload, while a backlog drains), half of them moved to the
	// next day, the rest on the same day: each punch counts once.
	fresh := Events(g, 48, 24)
	both := slices.Clone(fresh)
	for i, e := range fresh {
		date := e.WorkDate
		if i%2 == 0 {
			date = addDays(t, date, 1)
		}
		both = append(both, reprocessed(e, "rules-v4", 3000+i, date))
	}
	write(t, s, NewBatch("v4", both, nil))
	CheckDaily(t, db, h.Dialect, rules)
	all = append(all, both...)
	if diff := DiffDays(expectedDays(t, rules, all), days(ReadDays(t, db, h.Dialect))); diff != "" {
		t.Errorf("after a batch holding two versions of each punch (-expected +table):\n%s", diff)
	}
	counted = 0
	for _, d := range ReadDays(t, db, h.Dialect) {
		counted += d.PunchCount + d.DoublePunches
	}
	if want := len(evs) + len(fresh); counted != want {
		t.Errorf("the days count %d punches, want each of the %d once", counted, want)
	}
}

// reprocessed is e as a replay under rules makes it: a new id, CLEAN
// sequence seq, work date date, marked reprocessed.
func reprocessed(e sink.Event, rules string, seq int, date string) sink.Event {
	e.RulesVersion, e.Seq, e.WorkDate, e.Reprocessed = rules, uint64(seq), date, true
	e.ID = proto.AttendanceID(e.Lineage.RawID, rules, e.RosterVersion)
	return e
}

// addDays returns the date (YYYY-MM-DD) n days after date.
func addDays(t testing.TB, date string, n int) string {
	t.Helper()
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		t.Fatal(err)
	}
	return d.AddDate(0, 0, n).Format(time.DateOnly)
}

// testConcurrentReplays writes two new versions of the same punches at once,
// on two writers in small batches (two replays under different rules, or a
// replay and a redelivery): the one with the higher CLEAN sequence wins, on
// whatever day its rules give the punch, and each punch counts once. A sink
// that looks up the other versions of a punch before a concurrent batch
// holding one commits would leave that version counted.
func testConcurrentReplays(t *testing.T, h Harness) {
	rules := daily.Rules{Debounce: time.Minute, ShiftStart: daily.Clock{Hour: 8}}
	s, db := h.open(t, rules)
	g := synth.New(synth.Config{Users: 4})
	evs := Events(g, 0, 32) // 2 days of 4 users, 4 punches each
	write(t, s, NewBatch("v1", evs, nil))
	all := slices.Clone(evs)
	seq := 1000
	for round := range 6 {
		// Writer 0 moves every punch a day on, writer 1 two days on; the
		// sequences interleave, so either may hold the latest version.
		versions := make([][]sink.Event, 2)
		for i, e := range evs {
			for w := range versions {
				v := reprocessed(e, fmt.Sprintf("rules-r%d-w%d", round, w), seq+2*i+(w+i+round)%2, addDays(t, e.WorkDate, w+1))
				versions[w] = append(versions[w], v)
			}
		}
		seq += 2 * len(evs)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for w, mine := range versions {
			wg.Go(func() {
				for i := 0; i < len(mine); i += 4 {
					// A deadlock is transient: the loader writes the
					// batch again (under a new batch id), and so does
					// this writer.
					for attempt := 0; ; attempt++ {
						b := NewBatch(fmt.Sprintf("r%d-w%d-%d-a%d", round, w, i, attempt), mine[i:min(i+4, len(mine))], nil)
						_, err := s.Write(t.Context(), b)
						if class, _ := fault.Classify(err); err == nil || class != fault.Transient || attempt == 10 {
							if err != nil {
								mu.Lock()
								errs = append(errs, err)
								mu.Unlock()
							}
							break
						}
					}
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: Write: %v", round, err)
		}
		all = append(all, versions[0]...)
		all = append(all, versions[1]...)
		CheckDaily(t, db, h.Dialect, rules)
		if diff := DiffDays(expectedDays(t, rules, all), days(ReadDays(t, db, h.Dialect))); diff != "" {
			t.Fatalf("round %d (-expected +table):\n%s", round, diff)
		}
	}
}
