package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for the conformance tests

	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/daily"
	"github.com/punchflow/punchflow/services/loader/internal/migrate"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
	"github.com/punchflow/punchflow/services/loader/internal/sink/postgres"
	"github.com/punchflow/punchflow/services/loader/internal/sink/sinktest"
	"github.com/punchflow/punchflow/services/loader/internal/synth"
)

// base is the first punch instant of the generated events.
var base = time.Date(2024, 3, 1, 7, 58, 0, 123456000, time.UTC)

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
	b := sink.Batch{ID: id, Sink: "pg-test", Events: evs, Started: time.Now().Add(-time.Second)}
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
		FirstSeq: int64(b.FirstSeq), LastSeq: int64(b.LastSeq), StartedAt: b.Started.Truncate(time.Microsecond),
		Outcome: sink.OutcomeCommitted,
	}
}

func failed(b sink.Batch) batchRow {
	return batchRow{
		BatchID: b.ID, Sink: b.Sink, RowCount: len(b.Events),
		FirstSeq: int64(b.FirstSeq), LastSeq: int64(b.LastSeq), StartedAt: b.Started.Truncate(time.Microsecond),
		Outcome: sink.OutcomeFailed, HasError: true,
	}
}

// db is a test database with a Sink open on it and a connection of its own
// to look at the tables.
type db struct {
	url  string
	sink *postgres.Sink
	conn *pgx.Conn
}

func setup(t *testing.T) *db {
	t.Helper()
	ctx := t.Context()
	url := dbtest.PostgresURL(t)
	s, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.WithMaxConns(4))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// Registered before the database drop that dbtest registered, so it
	// runs first.
	t.Cleanup(func() { _ = s.Close() })
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return &db{url: url, sink: s, conn: conn}
}

func (d *db) rows(t *testing.T) []row {
	t.Helper()
	rs, err := d.conn.Query(t.Context(), `SELECT id, rules_version, site, device_serial, user_id, person_id,
		occurred_at, device_time, time_zone, direction, state, verify_mode,
		to_char(work_date, 'YYYY-MM-DD'), flags,
		raw_id, raw_subject, raw_stream, raw_sequence, clean_sequence,
		run_id, correlation_id, batch_id
		FROM attendance_events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.ID, &x.RulesVersion, &x.Site, &x.DeviceSerial, &x.UserID, &x.PersonID,
			&x.OccurredAt, &x.DeviceTime, &x.TimeZone, &x.Direction, &x.State, &x.VerifyMode,
			&x.WorkDate, &x.Flags,
			&x.RawID, &x.RawSubject, &x.RawStream, &x.RawSequence, &x.CleanSequence,
			&x.RunID, &x.CorrelationID, &x.BatchID)
		return x, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (d *db) batches(t *testing.T) []batchRow {
	t.Helper()
	rs, err := d.conn.Query(t.Context(), `SELECT batch_id, sink, row_count, inserted, duplicates,
		first_seq, last_seq, started_at, outcome, coalesce(error, '') <> '', duration_ms
		FROM load_batches ORDER BY started_at, batch_id`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (batchRow, error) {
		var (
			x  batchRow
			ms int64
		)
		err := r.Scan(&x.BatchID, &x.Sink, &x.RowCount, &x.Inserted, &x.Duplicates,
			&x.FirstSeq, &x.LastSeq, &x.StartedAt, &x.Outcome, &x.HasError, &ms)
		if err == nil && ms < 0 {
			err = fmt.Errorf("batch %s: duration_ms %d < 0", x.BatchID, ms)
		}
		return x, err
	})
	if err != nil {
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
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
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
			before := time.Now()
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
			var n int
			if err := d.conn.QueryRow(t.Context(),
				`SELECT count(*) FROM attendance_events WHERE batch_id = $1 AND loaded_at < $2`,
				tt.batch.ID, before.Add(-time.Minute)).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%d rows of batch %s have a loaded_at before the write", n, tt.batch.ID)
			}
		})
	}
}

func TestWriteRefused(t *testing.T) {
	loaded := batch("batch-a", events(0, 10))
	// with returns n events from evt-000005 on, event k changed.
	with := func(id string, n, k int, change func(*sink.Event)) sink.Batch {
		evs := events(5, n)
		change(&evs[k])
		return batch(id, evs)
	}
	// A replayed batch takes the merge path only if its COPY meets a loaded
	// id before the bad row: COPY checks a row's CHECK constraints and
	// encoding as it reads the row, but its keys only when it flushes a
	// buffer of 1,000 rows. So the bad row of a long batch goes last in the
	// COPY's order (by day: the latest work date).
	const long = 1500
	last := func(e *sink.Event) { e.WorkDate = "2024-03-31" }
	tests := []struct {
		name    string
		preload bool // load batch-a (events 0..9) first, so that the batch takes the merge path
		batch   sink.Batch
		wantErr []string
	}{
		{
			name:    "direction outside the check",
			batch:   with("bad-direction", 10, 6, func(e *sink.Event) { e.Direction = "sideways" }),
			wantErr: []string{"copy into attendance_events:", "attendance_events_direction_check"},
		},
		{
			name:    "state out of range",
			batch:   with("bad-state", 10, 9, func(e *sink.Event) { e.State = 256 }),
			wantErr: []string{"attendance_events_state_check"},
		},
		{
			name:    "id longer than 64",
			batch:   with("long-id", 10, 0, func(e *sink.Event) { e.ID = strings.Repeat("x", 65) }),
			wantErr: []string{"22001"},
		},
		{
			name:    "work date that is not a date",
			batch:   with("bad-date", 10, 2, func(e *sink.Event) { e.WorkDate = "2024-02-30" }),
			wantErr: []string{"work_date"},
		},
		{
			name:    "flag with a comma",
			batch:   with("bad-flag", 10, 2, func(e *sink.Event) { e.Flags = []string{"a,b"} }),
			wantErr: []string{"comma"},
		},
		{
			name:    "bad row in a replayed batch",
			preload: true,
			batch:   with("bad-replay", long, long-1, func(e *sink.Event) { last(e); e.Direction = "sideways" }),
			wantErr: []string{"merge into attendance_events:", "attendance_events_direction_check"},
		},
		{
			name:    "NUL byte in a replayed batch",
			preload: true,
			batch:   with("nul", long, long-1, func(e *sink.Event) { last(e); e.UserID = "12\x003" }),
			wantErr: []string{"copy into attendance_events_stage:", "22021"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := setup(t)
			var want []row
			wantBatches := []batchRow{}
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
	t.Run("row locked by another transaction past the deadline", func(t *testing.T) {
		d := setup(t)
		b := batch("blocked", events(0, 10))
		// Another transaction inserts evt-000004 and holds it uncommitted:
		// the COPY waits for it until the write's deadline.
		other, err := d.conn.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = other.Rollback(context.Background()) }()
		if _, err := other.Exec(t.Context(), `INSERT INTO attendance_events
			(id, rules_version, site, device_serial, user_id, occurred_at, device_time, time_zone,
			 direction, state, verify_mode, work_date, raw_id, raw_subject, raw_stream,
			 raw_sequence, clean_sequence, batch_id)
			VALUES ('evt-000004', 'r', 's', 'd', 'u', now(), '2024-03-01T08:00:00', 'UTC',
			 'in', 0, 0, '2024-03-01', 'raw', 'raw.x', 'RAW', 1, 1, 'other')`); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		_, err = d.sink.Write(ctx, b)
		if err == nil {
			t.Fatal("Write returned nil while a row it needs is locked")
		}
		t.Logf("Write: %v", err)
		if class, _ := fault.Classify(err); class != fault.Transient {
			t.Errorf("Classify(%v) = %v, want transient", err, class)
		}
		if err := other.Rollback(t.Context()); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]row(nil), d.rows(t), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("attendance_events (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]batchRow{failed(b)}, d.batches(t), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("load_batches (-want +got):\n%s", diff)
		}
		// The lock is gone: the same events load now.
		b.ID = "retry"
		if got, want := d.write(t, b), (sink.Result{Inserted: 10, Days: days(b.Events)}); got != want {
			t.Errorf("retry: Write = %+v, want %+v", got, want)
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
		{ID: "", Sink: "pg-test", Events: events(0, 1)},
		{ID: "empty", Sink: "pg-test"},
	} {
		_, err := d.sink.Write(t.Context(), b)
		if class, reason := fault.Classify(err); err == nil || class != fault.Permanent || reason != proto.ReasonInvalid {
			t.Errorf("Write(%+v) = %v (class %v, reason %q), want a permanent %q error", b, err, class, reason, proto.ReasonInvalid)
		}
	}
	if diff := cmp.Diff([]batchRow{}, d.batches(t), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("load_batches (-want +got):\n%s", diff)
	}
}

// TestConcurrentWriters has replicas write overlapping batches at once:
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
				// Writer w's batch i covers events [start, start+size):
				// neighbours overlap, and writers repeat each other.
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
	var wantRowCount int
	if err := d.conn.QueryRow(t.Context(), `SELECT sum(inserted) FROM load_batches WHERE outcome = 'committed'`).Scan(&wantRowCount); err != nil {
		t.Fatal(err)
	}
	if wantRowCount != len(rows) {
		t.Errorf("load_batches says %d inserted, attendance_events has %d rows", wantRowCount, len(rows))
	}
}

func TestOpenTwice(t *testing.T) {
	d := setup(t)
	d.write(t, batch("before", events(0, 5)))
	// A second Open (a restart, or another replica) finds the schema current
	// and leaves the data alone.
	s, err := postgres.Open(t.Context(), d.url, nil)
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
	if err := d.conn.QueryRow(t.Context(), `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", d.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, latest, err := migrate.Version(t.Context(), db, migrate.Postgres); err != nil || versions != latest {
		t.Errorf("goose_db_version holds %d applied migrations, want one per migration (%d, %v)", versions, latest, err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	// Port 1 on localhost refuses connections.
	if s, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", nil); err == nil {
		s.Close()
		t.Fatal("Open of an unreachable server returned nil")
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

func TestConformance(t *testing.T) {
	sinktest.Run(t, sinktest.Harness{
		Dialect: sinktest.Postgres,
		Open: func(t *testing.T, o sinktest.Options) (sink.Sink, *sql.DB, func(sinktest.Options) (sink.Sink, error)) {
			url := dbtest.PostgresURL(t)
			open := func(o sinktest.Options) (sink.Sink, error) {
				s, err := postgres.Open(t.Context(), url, slog.New(slog.DiscardHandler),
					postgres.WithDailyRules(o.Rules), postgres.WithRecordTables(o.Tables))
				if err == nil {
					t.Cleanup(func() { _ = s.Close() })
				}
				return s, err
			}
			s, err := open(o)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			db, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			return s, db, open
		},
	})
}

// TestDailyStateExtends loads a workforce in stream order and checks the
// state columns the incremental path keeps: every row has its state, and
// the state equals a full summary of the day's punches, so that the next
// batch can extend it. The days themselves are checked by the conformance
// suite.
func TestDailyStateExtends(t *testing.T) {
	url := dbtest.PostgresURL(t)
	rules := daily.DefaultRules()
	s, err := postgres.Open(t.Context(), url, nil, postgres.WithDailyRules(rules))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g := synth.New(synth.Config{Users: 5, DoubleEvery: 4})
	evs := sinktest.Events(g, 0, 5*4*2)
	for i := 0; i < len(evs); i += 3 {
		if _, err := s.Write(t.Context(), sinktest.NewBatch(fmt.Sprintf("b%d", i), evs[i:min(i+3, len(evs))], nil)); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	punches := sinktest.ReadPunches(t, db, sinktest.Postgres)
	rows, err := db.QueryContext(t.Context(), `SELECT site, user_id, to_char(work_date, 'YYYY-MM-DD'),
		worked_us, last_kept_at, last_at, open_since, rules_version FROM daily_attendance`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			k        daily.Key
			workedUS sql.NullInt64
			kept     sql.NullTime
			last     sql.NullTime
			open     sql.NullTime
			version  sql.NullString
		)
		if err := rows.Scan(&k.Site, &k.UserID, &k.WorkDate, &workedUS, &kept, &last, &open, &version); err != nil {
			t.Fatal(err)
		}
		n++
		if !workedUS.Valid || !kept.Valid || !last.Valid || !version.Valid {
			t.Errorf("day %v has no state: %v %v %v %v", k, workedUS, kept, last, version)
			continue
		}
		ps := punches[k]
		for i := range ps {
			ps[i].RulesVersion = "rules-synth"
		}
		want, err := daily.New(rules).Summarize(k, ps)
		if err != nil {
			t.Fatal(err)
		}
		got := daily.State{Worked: time.Duration(workedUS.Int64) * time.Microsecond, LastKept: kept.Time, Last: last.Time,
			OpenSince: open.Time, RulesVersion: version.String}
		if got.Worked != want.Worked || !got.LastKept.Equal(want.LastKept) || !got.Last.Equal(want.Last) ||
			!got.OpenSince.Equal(want.OpenSince) || got.RulesVersion != want.RulesVersion {
			t.Errorf("day %v: state %+v, want worked %v, last kept %v, last %v, open since %v, version %q",
				k, got, want.Worked, want.LastKept, want.Last, want.OpenSince, want.RulesVersion)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 5*2 {
		t.Errorf("%d days, want 10", n)
	}
}

// TestDailyTwoReplicas has two sinks (two loader replicas) on one database
// take turns writing a stream in order, so that each day grows batch after
// batch through both: each sink's memory of the days it wrote last is out
// of date every other batch, and must never be extended in place of the
// row the other sink wrote.
func TestDailyTwoReplicas(t *testing.T) {
	url := dbtest.PostgresURL(t)
	rules := daily.DefaultRules()
	var replicas [2]*postgres.Sink
	for i := range replicas {
		s, err := postgres.Open(t.Context(), url, nil, postgres.WithDailyRules(rules))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		replicas[i] = s
	}
	g := synth.New(synth.Config{Users: 4, DoubleEvery: 6})
	evs := sinktest.Events(g, 0, 4*4*2)
	for i, n := 0, 0; i < len(evs); i, n = i+3, n+1 {
		// Batches of three take turns, except that every third turn the
		// same replica goes again, so that it also extends a day from
		// what it wrote itself.
		s := replicas[n%2]
		if n%3 == 2 {
			s = replicas[(n-1)%2]
		}
		if _, err := s.Write(t.Context(), sinktest.NewBatch(fmt.Sprintf("b%d", i), evs[i:min(i+3, len(evs))], nil)); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := sinktest.CheckDaily(t, db, sinktest.Postgres, rules); n != 4*2 {
		t.Errorf("%d days, want 8", n)
	}
}

// TestRecordsCommitWithTheirCopy writes a batch of records, which commits
// with its COPY in one round trip (the status row written out as SQL
// text), with a batch id and a sink name that need quoting, then the same
// records again, which merge: both status rows are right.
func TestRecordsCommitWithTheirCopy(t *testing.T) {
	d := setup(t)
	g := synth.New(synth.Config{})
	recs := sinktest.Records(g, "orders", 0, 20)
	first := sinktest.NewBatch(`it's "1"`, nil, recs)
	first.Sink = `pg-'test\`
	if res := d.write(t, first); res != (sink.Result{Inserted: 20}) {
		t.Errorf("first write: %+v", res)
	}
	again := sinktest.NewBatch("again", nil, recs)
	again.Sink = first.Sink
	again.Started = first.Started.Add(time.Second)
	if res := d.write(t, again); res != (sink.Result{Duplicates: 20}) {
		t.Errorf("second write: %+v", res)
	}
	want := []batchRow{committed(first, 20, 0), committed(again, 0, 20)}
	want[0].RowCount, want[1].RowCount = 20, 20 // committed counts events
	if diff := cmp.Diff(want, d.batches(t)); diff != "" {
		t.Errorf("load_batches (-want +got):\n%s", diff)
	}
}
