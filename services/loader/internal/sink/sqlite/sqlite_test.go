package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	_ "modernc.org/sqlite"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/migrate"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
	"github.com/punchflow/punchflow/services/loader/internal/sink/sinktest"
	"github.com/punchflow/punchflow/services/loader/internal/sink/sqlite"
)

// base is the first punch instant of the generated events.
var base = time.Date(2024, 3, 1, 7, 58, 0, 123456789, time.UTC)

// events returns n deterministic, valid events numbered from first, with
// CLEAN sequences 1000+number. Optional fields are set on some and left
// empty on others, so that both read back.
func events(first, n int) []sink.Event {
	evs := make([]sink.Event, n)
	for i := range evs {
		k := first + i
		e := sink.Event{Seq: uint64(1000 + k)}
		e.ID = fmt.Sprintf("evt-%06d", k)
		e.SchemaVersion = proto.SchemaVersion
		e.RulesVersion = "rules-abc123"
		e.Site = []string{"hq", "plant-2"}[k%2]
		e.DeviceSerial = fmt.Sprintf("ZK%04d", k%7)
		e.UserID = fmt.Sprintf("%d", 100+k%13)
		if k%3 != 0 {
			e.PersonID = fmt.Sprintf("person-%d", k%13)
		}
		e.OccurredAt = base.Add(time.Duration(k) * time.Minute)
		e.DeviceTime = e.OccurredAt.Add(8 * time.Hour).Format("2006-01-02T15:04:05")
		e.TimeZone = "Asia/Singapore"
		e.Direction = []string{proto.DirectionIn, proto.DirectionOut, proto.DirectionBreakOut, proto.DirectionBreakIn, proto.DirectionUnknown}[k%5]
		e.State = k % 6
		e.VerifyMode = k % 16
		e.WorkDate = e.OccurredAt.Add(8 * time.Hour).Format(time.DateOnly)
		switch k % 4 {
		case 1:
			e.Flags = []string{"unknown_user"}
		case 2:
			e.Flags = []string{"dst_gap", "unknown_state"}
		}
		e.Lineage = proto.Lineage{
			RawID:       fmt.Sprintf("raw-%06d", k),
			RawSubject:  "raw.punch." + e.Site + "." + e.DeviceSerial,
			RawStream:   "RAW",
			RawSequence: uint64(500 + k),
		}
		if k%2 == 0 {
			e.Lineage.RunID = fmt.Sprintf("run-%d", k/10)
			e.Lineage.CorrelationID = fmt.Sprintf("corr-%d", k)
		}
		evs[i] = e
	}
	return evs
}

func batch(id string, evs []sink.Event) sink.Batch {
	b := sink.Batch{ID: id, Sink: "sqlite-test", Events: evs, Started: time.Now().Add(-time.Second)}
	if len(evs) > 0 {
		b.FirstSeq, b.LastSeq = evs[0].Seq, evs[0].Seq
		for _, e := range evs {
			b.FirstSeq, b.LastSeq = min(b.FirstSeq, e.Seq), max(b.LastSeq, e.Seq)
		}
	}
	return b
}

// days is the number of distinct days of evs.
func days(evs []sink.Event) int {
	seen := map[[3]string]bool{}
	for _, e := range evs {
		seen[[3]string{e.Site, e.UserID, e.WorkDate}] = true
	}
	return len(seen)
}

// row is one attendance_events row as read back.
type row struct {
	ID, RulesVersion, Site, DeviceSerial, UserID string
	PersonID                                     *string
	OccurredAt                                   time.Time
	DeviceTime, TimeZone, Direction              string
	State, VerifyMode                            int
	WorkDate                                     string
	Flags                                        string
	RawID, RawSubject, RawStream                 string
	RawSequence, CleanSequence                   int64
	RunID, CorrelationID, BatchID                string
}

// wantRow is the row e must become when loaded by batch batchID.
func wantRow(e sink.Event, batchID string) row {
	r := row{
		ID: e.ID, RulesVersion: e.RulesVersion, Site: e.Site, DeviceSerial: e.DeviceSerial, UserID: e.UserID,
		OccurredAt: e.OccurredAt, DeviceTime: e.DeviceTime, TimeZone: e.TimeZone, Direction: e.Direction,
		State: e.State, VerifyMode: e.VerifyMode, WorkDate: e.WorkDate, Flags: strings.Join(e.Flags, ","),
		RawID: e.Lineage.RawID, RawSubject: e.Lineage.RawSubject, RawStream: e.Lineage.RawStream,
		RawSequence: int64(e.Lineage.RawSequence), CleanSequence: int64(e.Seq),
		RunID: e.Lineage.RunID, CorrelationID: e.Lineage.CorrelationID, BatchID: batchID,
	}
	if e.PersonID != "" {
		p := e.PersonID
		r.PersonID = &p
	}
	return r
}

func wantRows(evs []sink.Event, batchID string) []row {
	out := make([]row, len(evs))
	for i, e := range evs {
		out[i] = wantRow(e, batchID)
	}
	return out
}

// batchRow is one load_batches row as read back (duration left out).
type batchRow struct {
	BatchID, Sink                  string
	RowCount, Inserted, Duplicates int
	FirstSeq, LastSeq              int64
	StartedAt                      time.Time
	Outcome                        string
	HasError                       bool
}

func committed(b sink.Batch, inserted, duplicates int) batchRow {
	return batchRow{
		BatchID: b.ID, Sink: b.Sink, RowCount: len(b.Events), Inserted: inserted, Duplicates: duplicates,
		FirstSeq: int64(b.FirstSeq), LastSeq: int64(b.LastSeq), StartedAt: b.Started,
		Outcome: sink.OutcomeCommitted,
	}
}

func failed(b sink.Batch) batchRow {
	return batchRow{
		BatchID: b.ID, Sink: b.Sink, RowCount: len(b.Events),
		FirstSeq: int64(b.FirstSeq), LastSeq: int64(b.LastSeq), StartedAt: b.Started,
		Outcome: sink.OutcomeFailed, HasError: true,
	}
}

// db is a test database file with a Sink open on it and a connection of its
// own to look at the tables.
type db struct {
	path string
	sink *sqlite.Sink
	conn *sql.DB
}

func setup(t *testing.T, opts ...sqlite.Option) *db {
	t.Helper()
	path := filepath.Join(t.TempDir(), "punchflow.db")
	s, err := sqlite.Open(t.Context(), path, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	conn, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &db{path: path, sink: s, conn: conn}
}

func (d *db) rows(t *testing.T) []row {
	t.Helper()
	rs, err := d.conn.QueryContext(t.Context(), `SELECT id, rules_version, site, device_serial, user_id, person_id,
		occurred_at, device_time, time_zone, direction, state, verify_mode,
		work_date, flags,
		raw_id, raw_subject, raw_stream, raw_sequence, clean_sequence,
		run_id, correlation_id, batch_id, loaded_at
		FROM attendance_events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var (
			x                  row
			occurred, loadedAt string
		)
		if err := rs.Scan(&x.ID, &x.RulesVersion, &x.Site, &x.DeviceSerial, &x.UserID, &x.PersonID,
			&occurred, &x.DeviceTime, &x.TimeZone, &x.Direction, &x.State, &x.VerifyMode,
			&x.WorkDate, &x.Flags,
			&x.RawID, &x.RawSubject, &x.RawStream, &x.RawSequence, &x.CleanSequence,
			&x.RunID, &x.CorrelationID, &x.BatchID, &loadedAt); err != nil {
			t.Fatal(err)
		}
		x.OccurredAt = parseTime(t, occurred)
		if l := parseTime(t, loadedAt); time.Since(l) > time.Minute || time.Until(l) > time.Minute {
			t.Errorf("row %s: loaded_at %s is not about now", x.ID, loadedAt)
		}
		out = append(out, x)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// parseTime reads an instant the sink stored: RFC 3339 UTC with nine
// fraction digits.
func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || len(s) != len("2006-01-02T15:04:05.000000000Z") || !strings.HasSuffix(s, "Z") {
		t.Fatalf("stored time %q is not RFC 3339 UTC with nine fraction digits (%v)", s, err)
	}
	return v
}

func (d *db) batches(t *testing.T) []batchRow {
	t.Helper()
	rs, err := d.conn.QueryContext(t.Context(), `SELECT batch_id, sink, row_count, inserted, duplicates,
		first_seq, last_seq, started_at, outcome, coalesce(error, '') <> '', duration_ms
		FROM load_batches ORDER BY started_at, batch_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []batchRow
	for rs.Next() {
		var (
			x       batchRow
			started string
			ms      int64
		)
		if err := rs.Scan(&x.BatchID, &x.Sink, &x.RowCount, &x.Inserted, &x.Duplicates,
			&x.FirstSeq, &x.LastSeq, &started, &x.Outcome, &x.HasError, &ms); err != nil {
			t.Fatal(err)
		}
		if ms < 0 {
			t.Errorf("batch %s: duration_ms %d < 0", x.BatchID, ms)
		}
		x.StartedAt = parseTime(t, started)
		out = append(out, x)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (d *db) write(t *testing.T, b sink.Batch) sink.Result {
	t.Helper()
	res, err := d.sink.Write(t.Context(), b)
	if err != nil {
		t.Fatalf("Write(%s): %v", b.ID, err)
	}
	return res
}

func TestWrite(t *testing.T) {
	// Batch starts are spaced so that load_batches sorts in write order.
	t0 := time.Now().Add(-time.Hour).UTC()
	at := func(b sink.Batch, i int) sink.Batch { b.Started = t0.Add(time.Duration(i) * time.Second); return b }

	a := at(batch("batch-a", events(0, 50)), 0)
	again := at(batch("batch-b", events(0, 50)), 1)
	overlap := at(batch("batch-b", events(25, 50)), 1)
	// Events 3 and 7 delivered twice within one batch, the second time
	// with later CLEAN sequences: the first delivery is kept.
	redelivered := events(0, 10)
	for _, k := range []int{3, 7} {
		e := redelivered[k]
		e.Seq += 100
		redelivered = append(redelivered, e)
	}
	dupsInside := at(batch("batch-a", redelivered), 0)
	small := at(batch("batch-a", events(0, 10)), 0)
	mixed := events(5, 10)
	mixed = append(mixed, mixed[7]) // evt-000012 twice
	mixed[len(mixed)-1].Seq += 100
	dupsBoth := at(batch("batch-b", mixed), 1)
	// Long enough for several statements or COPY buffers, duplicates
	// spread across them.
	bigLoaded := at(batch("batch-a", events(0, 150)), 0)
	bigEvents := events(100, 250)
	for _, k := range []int{20, 200} {
		e := bigEvents[k]
		e.Seq += 1000
		bigEvents = append(bigEvents, e)
	}
	big := at(batch("batch-b", bigEvents), 1)

	tests := []struct {
		name     string
		preload  []sink.Batch
		batch    sink.Batch
		want     sink.Result
		rows     []row
		batchRow []batchRow
	}{
		{
			name:     "new events are inserted",
			batch:    a,
			want:     sink.Result{Inserted: 50, Days: days(a.Events)},
			rows:     wantRows(a.Events, a.ID),
			batchRow: []batchRow{committed(a, 50, 0)},
		},
		{
			name:     "the same events again insert nothing",
			preload:  []sink.Batch{a},
			batch:    again,
			want:     sink.Result{Duplicates: 50},
			rows:     wantRows(a.Events, a.ID),
			batchRow: []batchRow{committed(a, 50, 0), committed(again, 0, 50)},
		},
		{
			name:     "half loaded half new",
			preload:  []sink.Batch{a},
			batch:    overlap,
			want:     sink.Result{Inserted: 25, Duplicates: 25, Days: days(events(50, 25))},
			rows:     append(wantRows(a.Events, a.ID), wantRows(events(50, 25), overlap.ID)...),
			batchRow: []batchRow{committed(a, 50, 0), committed(overlap, 25, 25)},
		},
		{
			name:     "an id twice within the batch",
			batch:    dupsInside,
			want:     sink.Result{Inserted: 10, Duplicates: 2, Days: days(events(0, 10))},
			rows:     wantRows(events(0, 10), dupsInside.ID),
			batchRow: []batchRow{committed(dupsInside, 10, 2)},
		},
		{
			name:     "an id twice within the batch and ids already loaded",
			preload:  []sink.Batch{small},
			batch:    dupsBoth,
			want:     sink.Result{Inserted: 5, Duplicates: 6, Days: days(events(10, 5))},
			rows:     append(wantRows(small.Events, small.ID), wantRows(events(10, 5), dupsBoth.ID)...),
			batchRow: []batchRow{committed(small, 10, 0), committed(dupsBoth, 5, 6)},
		},
		{
			name:     "long batch with duplicates throughout",
			preload:  []sink.Batch{bigLoaded},
			batch:    big,
			want:     sink.Result{Inserted: 200, Duplicates: 52, Days: days(events(150, 200))},
			rows:     append(wantRows(bigLoaded.Events, bigLoaded.ID), wantRows(events(150, 200), big.ID)...),
			batchRow: []batchRow{committed(bigLoaded, 150, 0), committed(big, 200, 52)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := setup(t)
			for _, p := range tt.preload {
				d.write(t, p)
			}
			got := d.write(t, tt.batch)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Write result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.rows, d.rows(t), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("attendance_events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.batchRow, d.batches(t), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("load_batches (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteRefused(t *testing.T) {
	loaded := batch("batch-a", events(0, 10))
	// with returns 10 events from evt-000005 on, event k changed.
	with := func(id string, k int, change func(*sink.Event)) sink.Batch {
		evs := events(5, 10)
		change(&evs[k])
		return batch(id, evs)
	}
	tests := []struct {
		name    string
		preload bool // load batch-a (events 0..9) first, so that the batch replays some
		batch   sink.Batch
		wantErr []string
	}{
		{
			name:    "direction outside the check",
			batch:   with("bad-direction", 6, func(e *sink.Event) { e.Direction = "sideways" }),
			wantErr: []string{"insert events evt-000005 to evt-000014 into attendance_events", "CHECK constraint failed: direction"},
		},
		{
			name:    "state out of range",
			batch:   with("bad-state", 9, func(e *sink.Event) { e.State = 256 }),
			wantErr: []string{"CHECK constraint failed: state"},
		},
		{
			name:    "id longer than 64",
			batch:   with("long-id", 0, func(e *sink.Event) { e.ID = strings.Repeat("x", 65) }),
			wantErr: []string{"CHECK constraint failed: length(id)"},
		},
		{
			name:    "work date that is not a date",
			batch:   with("bad-date", 2, func(e *sink.Event) { e.WorkDate = "2024-02-30" }),
			wantErr: []string{"CHECK constraint failed: date(work_date)"},
		},
		{
			name:    "flag with a comma",
			batch:   with("bad-flag", 2, func(e *sink.Event) { e.Flags = []string{"a,b"} }),
			wantErr: []string{"comma"},
		},
		{
			name:    "bad row in a replayed batch",
			preload: true,
			batch:   with("bad-replay", 8, func(e *sink.Event) { e.Direction = "sideways" }),
			wantErr: []string{"CHECK constraint failed: direction"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := setup(t)
			var (
				want        []row
				wantBatches []batchRow
			)
			if tt.preload {
				loaded.Started = tt.batch.Started.Add(-time.Second)
				d.write(t, loaded)
				want = wantRows(loaded.Events, loaded.ID)
				wantBatches = append(wantBatches, committed(loaded, 10, 0))
			}

			_, err := d.sink.Write(t.Context(), tt.batch)
			if err == nil {
				t.Fatal("Write returned nil, want a permanent error")
			}
			t.Logf("Write: %v", err)
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Write error = %q, want it to mention %q", err, w)
				}
			}
			class, reason := fault.Classify(err)
			if class != fault.Permanent || reason != proto.ReasonRejectedBySink {
				t.Errorf("Classify = %v, %q; want permanent, %q (error: %v)", class, reason, proto.ReasonRejectedBySink, err)
			}
			if diff := cmp.Diff(want, d.rows(t), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("attendance_events after a refused batch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(append(wantBatches, failed(tt.batch)), d.batches(t), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("load_batches (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteTransient(t *testing.T) {
	t.Run("file locked by another process past the busy timeout", func(t *testing.T) {
		d := setup(t, sqlite.WithBusyTimeout(200*time.Millisecond))
		b := batch("blocked", events(0, 10))
		// Another connection (as another process would) holds the write
		// lock.
		other, err := d.conn.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if _, err := other.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		_, err = d.sink.Write(t.Context(), b)
		if err == nil {
			t.Fatal("Write returned nil while another connection holds the write lock")
		}
		t.Logf("Write: %v", err)
		if class, _ := fault.Classify(err); class != fault.Transient {
			t.Errorf("Classify(%v) = %v, want transient", err, class)
		}
		if !strings.Contains(err.Error(), "SQLITE_BUSY") {
			t.Errorf("Write error = %q, want SQLITE_BUSY", err)
		}
		// The failed batch cannot be recorded while the lock is held
		// (best effort): once it is released, the same events load.
		if _, err := other.ExecContext(t.Context(), "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		b.ID = "retry"
		if got, want := d.write(t, b), (sink.Result{Inserted: 10, Days: days(b.Events)}); got != want {
			t.Errorf("retry: Write = %+v, want %+v", got, want)
		}
		if diff := cmp.Diff(wantRows(b.Events, "retry"), d.rows(t)); diff != "" {
			t.Errorf("attendance_events (-want +got):\n%s", diff)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		d := setup(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		b := batch("cancelled", events(0, 10))
		_, err := d.sink.Write(ctx, b)
		if err == nil {
			t.Fatal("Write with a cancelled context returned nil")
		}
		if class, _ := fault.Classify(err); class != fault.Transient {
			t.Errorf("Classify(%v) = %v, want transient", err, class)
		}
		if diff := cmp.Diff([]row(nil), d.rows(t), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("attendance_events (-want +got):\n%s", diff)
		}
		// Recorded outside the cancelled context.
		if diff := cmp.Diff([]batchRow{failed(b)}, d.batches(t)); diff != "" {
			t.Errorf("load_batches (-want +got):\n%s", diff)
		}
	})

	t.Run("after Close", func(t *testing.T) {
		d := setup(t)
		if err := d.sink.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		_, err := d.sink.Write(t.Context(), batch("late", events(0, 3)))
		if err == nil {
			t.Fatal("Write after Close returned nil")
		}
		if class, _ := fault.Classify(err); class != fault.Transient {
			t.Errorf("Classify(%v) = %v, want transient", err, class)
		}
	})
}

func TestWriteInvalidBatch(t *testing.T) {
	d := setup(t)
	for _, b := range []sink.Batch{
		{ID: "", Sink: "sqlite-test", Events: events(0, 1)},
		{ID: "empty", Sink: "sqlite-test"},
	} {
		_, err := d.sink.Write(t.Context(), b)
		if class, reason := fault.Classify(err); err == nil || class != fault.Permanent || reason != proto.ReasonInvalid {
			t.Errorf("Write(%+v) = %v (class %v, reason %q), want a permanent %q error", b, err, class, reason, proto.ReasonInvalid)
		}
	}
	if diff := cmp.Diff([]batchRow(nil), d.batches(t)); diff != "" {
		t.Errorf("load_batches (-want +got):\n%s", diff)
	}
}

// TestConcurrentWriters writes overlapping batches from several goroutines:
// every event lands exactly once and the counts add up.
func TestConcurrentWriters(t *testing.T) {
	d := setup(t)
	const writers, batches, size, step = 4, 5, 40, 15
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total sink.Result
		errs  []error
	)
	for w := range writers {
		wg.Go(func() {
			for i := range batches {
				start := (i*step + w*5) % 100
				b := batch(fmt.Sprintf("w%d-b%d", w, i), events(start, size))
				res, err := d.sink.Write(t.Context(), b)
				mu.Lock()
				total.Inserted += res.Inserted
				total.Duplicates += res.Duplicates
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Write: %v", err)
	}
	rows := d.rows(t)
	if want := (sink.Result{Inserted: len(rows), Duplicates: writers*batches*size - len(rows)}); total != want {
		t.Errorf("sum of results = %+v, want %+v (%d rows loaded)", total, want, len(rows))
	}
	var inserted int
	if err := d.conn.QueryRowContext(t.Context(), `SELECT sum(inserted) FROM load_batches WHERE outcome = 'committed'`).Scan(&inserted); err != nil {
		t.Fatal(err)
	}
	if inserted != len(rows) {
		t.Errorf("load_batches says %d inserted, attendance_events has %d rows", inserted, len(rows))
	}
}

func TestReopen(t *testing.T) {
	d := setup(t)
	d.write(t, batch("before", events(0, 5)))
	if err := d.sink.Close(); err != nil {
		t.Fatal(err)
	}
	// A restart finds the schema current and the data in place.
	s, err := sqlite.Open(t.Context(), d.path, nil)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer s.Close()
	res, err := s.Write(t.Context(), batch("after", events(0, 10)))
	if err != nil {
		t.Fatal(err)
	}
	if want := (sink.Result{Inserted: 5, Duplicates: 5, Days: days(events(5, 5))}); res != want {
		t.Errorf("Write = %+v, want %+v", res, want)
	}
	var versions int64
	if err := d.conn.QueryRowContext(t.Context(), `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if _, latest, err := migrate.Version(t.Context(), d.conn, migrate.SQLite); err != nil || versions != latest {
		t.Errorf("goose_db_version holds %d applied migrations, want one per migration (%d, %v)", versions, latest, err)
	}
}

// TestOpenOddPath opens a file whose name holds characters that mean
// something in a URI.
func TestOpenOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd dir", "punch?flow#1%20.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	if _, err := s.Write(t.Context(), batch("odd", events(0, 2))); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file not at %q: %v", path, err)
	}
}

func TestOpenFails(t *testing.T) {
	dir := t.TempDir()
	for name, path := range map[string]string{
		"empty path":         "",
		"missing directory":  filepath.Join(dir, "no", "such", "dir", "x.db"),
		"directory for file": dir,
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := sqlite.Open(t.Context(), path, nil); err == nil {
				s.Close()
				t.Fatalf("Open(%q) returned nil", path)
			}
		})
	}
}

func TestPingAndClose(t *testing.T) {
	d := setup(t)
	if err := d.sink.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := d.sink.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := d.sink.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := d.sink.Ping(t.Context()); err == nil {
		t.Fatal("Ping after Close returned nil")
	}
}

// TestPingWhileLocked holds the file's write lock from another connection,
// as another process would in an outage: Ping fails while the lock is held
// (a read would still succeed) and succeeds again once it is released.
func TestPingWhileLocked(t *testing.T) {
	d := setup(t)
	conn, err := d.conn.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	if err := d.sink.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "write lock") {
		t.Errorf("Ping while another connection holds the write lock = %v, want an error about the write lock", err)
	}
	var n int
	if err := d.conn.QueryRowContext(t.Context(), "SELECT count(*) FROM attendance_events").Scan(&n); err != nil {
		t.Errorf("a read during the lock failed too: %v", err)
	}
	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := d.sink.Ping(t.Context()); err != nil {
		t.Errorf("Ping after the lock was released: %v", err)
	}
}

func TestConformance(t *testing.T) {
	sinktest.Run(t, sinktest.Harness{
		Dialect: sinktest.SQLite,
		Open: func(t *testing.T, o sinktest.Options) (sink.Sink, *sql.DB, func(sinktest.Options) (sink.Sink, error)) {
			path := filepath.Join(t.TempDir(), "conformance.db")
			var last sink.Sink
			// The file belongs to one sink at a time: opening another
			// closes the one before, as a restarted loader would.
			open := func(o sinktest.Options) (sink.Sink, error) {
				if last != nil {
					_ = last.Close()
				}
				s, err := sqlite.Open(t.Context(), path, slog.New(slog.DiscardHandler),
					sqlite.WithDailyRules(o.Rules), sqlite.WithRecordTables(o.Tables))
				if err == nil {
					last = s
					t.Cleanup(func() { _ = s.Close() })
				}
				return s, err
			}
			s, err := open(o)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			return s, db, open
		},
	})
}
