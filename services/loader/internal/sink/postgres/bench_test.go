package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
	"github.com/punchflow/punchflow/services/loader/internal/synth"
)

// benchRows is the loader's default batch size (--batch-rows).
const benchRows = 1000

// benchPair is the sink on one database and a plain pool on a second one
// with the same schema, for the baseline: both tables grow alike. The
// baseline's connections settle their server memory as the sink's do
// (SettleMallocSQL).
type benchPair struct {
	sink *Sink
	raw  *pgxpool.Pool
}

func openPair(b *testing.B) benchPair {
	b.Helper()
	s, err := Open(b.Context(), dbtest.PostgresURL(b), slog.New(slog.DiscardHandler), WithRecordTables(synth.RecordTables()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	url := dbtest.PostgresURL(b)
	// Open migrates the baseline database to the same schema.
	other, err := Open(b.Context(), url, nil, WithRecordTables(synth.RecordTables()))
	if err != nil {
		b.Fatal(err)
	}
	_ = other.Close()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, SettleMallocSQL)
		return err
	}
	raw, err := pgxpool.NewWithConfig(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	// Connected before anything is timed, as the sink is once open.
	if err := raw.Ping(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(raw.Close)
	return benchPair{sink: s, raw: raw}
}

// rawCopy is the baseline: one pgx CopyFrom of rows, in its own implicit
// transaction.
func (p benchPair) rawCopy(ctx context.Context, b *testing.B, table string, columns []string, rows [][]any) {
	n, err := p.raw.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromRows(rows))
	if err != nil || int(n) != len(rows) {
		b.Fatalf("raw copy into %s: %d rows, %v", table, n, err)
	}
}

// compare runs ours and the baseline alternately on the same data, and
// reports rows/s of ours, of the baseline, and their ratio.
func compare(b *testing.B, next func(i int) sink.Batch, table string, columns []string, p benchPair) {
	ctx := b.Context()
	var ours, base time.Duration
	rows := 0
	for i := 0; b.Loop(); i++ {
		batch := next(i)
		t0 := time.Now()
		res, err := p.sink.Write(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		ours += time.Since(t0)
		if res.Inserted != batch.Len() {
			b.Fatalf("batch %d: %+v, want %d inserted", i, res, batch.Len())
		}
		// The baseline gets the same rows, encoded outside its timing.
		enc := baselineRows(&batch)
		t0 = time.Now()
		p.rawCopy(ctx, b, table, columns, enc)
		base += time.Since(t0)
		rows += batch.Len()
	}
	b.ReportMetric(float64(rows)/ours.Seconds(), "rows/s")
	b.ReportMetric(float64(rows)/base.Seconds(), "baseline-rows/s")
	b.ReportMetric(base.Seconds()/ours.Seconds(), "ratio")
}

// baselineRows returns a batch's events and records as a plain CopyFrom
// takes them.
func baselineRows(b *sink.Batch) [][]any {
	out := make([][]any, 0, b.Len())
	for _, e := range b.Events {
		out = append(out, synth.EventRow(e.AttendanceEvent, e.Seq, b.ID))
	}
	for _, r := range b.Records {
		out = append(out, synth.TypedRecordRow(r.CleanRecord, r.Seq, b.ID))
	}
	return out
}

// BenchmarkPostgresRecords is the sink path for business records, into the
// typed table of their source (records_orders: the fields converted to
// their columns' types, the fields object and the payload), with all the
// exactly-once machinery (one transaction, load_batches row, unique key),
// against a raw CopyFrom of the same rows, typed beforehand, into the same
// indexed table. Goal: ratio ≥ 0.90.
func BenchmarkPostgresRecords(b *testing.B) {
	p := openPair(b)
	g := synth.New(synth.Config{})
	next := func(i int) sink.Batch {
		batch := sink.Batch{ID: fmt.Sprintf("bench-%d", i), Sink: "postgres", Started: time.Now()}
		for j := range benchRows {
			k := i*benchRows + j
			r := sink.Record{CleanRecord: g.Record("orders", k), Seq: uint64(k + 1)}
			// As the worker passes it: the fields object as it travelled,
			// and typed for the record's table.
			fields, err := r.FieldsJSON()
			if err != nil {
				b.Fatal(err)
			}
			r.RawFields = fields
			if r.Typed, err = benchTypes.Values(nil, fields); err != nil {
				panic(err)
			}
			batch.Records = append(batch.Records, r)
		}
		batch.FirstSeq, batch.LastSeq = batch.Records[0].Seq, batch.Records[len(batch.Records)-1].Seq
		return batch
	}
	group := sink.RecordGroup{Table: benchTypes}
	compare(b, next, group.Name(), group.Columns(), p)
}

// BenchmarkPostgresAttendance is the sink path for attendance events: the
// events with lineage, the daily summary of every day they touch, and the
// batch row, against a raw CopyFrom of the same events alone into the same
// indexed table. Goal: ratio ≥ 0.50.
func BenchmarkPostgresAttendance(b *testing.B) {
	p := openPair(b)
	g := synth.New(synth.Config{Users: 2000, DoubleEvery: 50})
	next := func(i int) sink.Batch {
		batch := sink.Batch{ID: fmt.Sprintf("bench-%d", i), Sink: "postgres", Started: time.Now()}
		for j := range benchRows {
			k := i*benchRows + j
			batch.Events = append(batch.Events, sink.Event{AttendanceEvent: g.Event(k), Seq: uint64(k + 1)})
		}
		batch.FirstSeq, batch.LastSeq = batch.Events[0].Seq, batch.Events[len(batch.Events)-1].Seq
		return batch
	}
	compare(b, next, eventsTable, eventColumns, p)
}

// BenchmarkPostgresReplay measures the replay path: every event of the
// batch is already loaded, so the COPY fails and the merge counts
// duplicates; no day is recomputed.
func BenchmarkPostgresReplay(b *testing.B) {
	p := openPair(b)
	g := synth.New(synth.Config{})
	batch := sink.Batch{ID: "preload", Sink: "postgres", Started: time.Now()}
	for k := range benchRows {
		batch.Events = append(batch.Events, sink.Event{AttendanceEvent: g.Event(k), Seq: uint64(k + 1)})
	}
	if _, err := p.sink.Write(b.Context(), batch); err != nil {
		b.Fatal(err)
	}
	rows := 0
	for i := 0; b.Loop(); i++ {
		batch.ID = fmt.Sprintf("replay-%d", i)
		res, err := p.sink.Write(b.Context(), batch)
		if err != nil {
			b.Fatal(err)
		}
		if res.Duplicates != benchRows || res.Days != 0 {
			b.Fatalf("replay %d: %+v, want %d duplicates and no day", i, res, benchRows)
		}
		rows += benchRows
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// benchTypes is the typed table of the records synth makes.
var benchTypes = synth.RecordTables()["orders"]
