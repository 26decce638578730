package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
	"github.com/punchflow/punchflow/services/loader/internal/synth"
)

// benchRows is the loader's default batch size (--batch-rows).
const benchRows = 1000

func openBench(b *testing.B, m Method) *Sink {
	b.Helper()
	s, err := Open(b.Context(), dbtest.MySQLDSN(b), slog.New(slog.DiscardHandler), WithMethod(m), WithRecordTables(synth.RecordTables()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// openRaw returns a plain handle on a second database migrated to the same
// schema, for the baseline.
func openRaw(b *testing.B) *sql.DB {
	b.Helper()
	dsn := dbtest.MySQLDSN(b)
	s, err := Open(b.Context(), dsn, nil, WithRecordTables(synth.RecordTables()))
	if err != nil {
		b.Fatal(err)
	}
	_ = s.Close()
	db, err := sql.Open("mysql", dsn+"?time_zone=%27%2B00%3A00%27")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	// Connected before anything is timed, as the sink is once open.
	if err := db.PingContext(b.Context()); err != nil {
		b.Fatal(err)
	}
	return db
}

// rawLoad is the baseline: one LOAD DATA LOCAL INFILE of the rows, in its
// own implicit transaction.
func rawLoad(ctx context.Context, b *testing.B, db *sql.DB, table string, columns []string, tsv []byte) {
	name := fmt.Sprintf("bench-raw-%d", time.Now().UnixNano())
	mysql.RegisterReaderHandler(name, func() io.Reader { return bytes.NewReader(tsv) })
	defer mysql.DeregisterReaderHandler(name)
	if _, err := db.ExecContext(ctx, `LOAD DATA LOCAL INFILE 'Reader::`+name+`' INTO TABLE `+table+`
		CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' (`+strings.Join(columns, ", ")+`)`); err != nil {
		b.Fatal(err)
	}
}

func recordBatch(g *synth.Generator, i int) sink.Batch {
	batch := sink.Batch{ID: fmt.Sprintf("bench-%d", i), Sink: "mysql", Started: time.Now()}
	for j := range benchRows {
		k := i*benchRows + j
		r := sink.Record{CleanRecord: g.Record("orders", k), Seq: uint64(k + 1)}
		// As the worker passes it: the fields object as it travelled,
		// and typed for the record's table.
		fields, err := r.FieldsJSON()
		if err != nil {
			panic(err)
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

func eventBatch(g *synth.Generator, i int) sink.Batch {
	batch := sink.Batch{ID: fmt.Sprintf("bench-%d", i), Sink: "mysql", Started: time.Now()}
	for j := range benchRows {
		k := i*benchRows + j
		batch.Events = append(batch.Events, sink.Event{AttendanceEvent: g.Event(k), Seq: uint64(k + 1)})
	}
	batch.FirstSeq, batch.LastSeq = batch.Events[0].Seq, batch.Events[len(batch.Events)-1].Seq
	return batch
}

// compare runs the sink and the raw LOAD DATA alternately on the same rows
// and reports rows/s of both and their ratio.
func compare(b *testing.B, s *Sink, raw *sql.DB, next func(int) sink.Batch, encode func(*sink.Batch) ([][]any, error), table string, columns []string) {
	ctx := b.Context()
	var ours, base time.Duration
	rows := 0
	for i := 0; b.Loop(); i++ {
		batch := next(i)
		t0 := time.Now()
		res, err := s.Write(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		ours += time.Since(t0)
		if res.Inserted != batch.Len() {
			b.Fatalf("batch %d: %+v", i, res)
		}
		enc, err := encode(&batch)
		if err != nil {
			b.Fatal(err)
		}
		var tsv bytes.Buffer
		for _, r := range enc {
			if err := appendTSV(&tsv, r); err != nil {
				b.Fatal(err)
			}
		}
		t0 = time.Now()
		rawLoad(ctx, b, raw, table, columns, tsv.Bytes())
		base += time.Since(t0)
		rows += batch.Len()
	}
	b.ReportMetric(float64(rows)/ours.Seconds(), "rows/s")
	b.ReportMetric(float64(rows)/base.Seconds(), "baseline-rows/s")
	b.ReportMetric(base.Seconds()/ours.Seconds(), "ratio")
}

// BenchmarkMySQLRecords is the sink path for business records, into the
// typed table of their source (records_orders), with all the exactly-once
// machinery, against a raw LOAD DATA LOCAL of the same rows, typed
// beforehand, into the same indexed table. Goal: ratio ≥ 0.80.
func BenchmarkMySQLRecords(b *testing.B) {
	g := synth.New(synth.Config{})
	s := openBench(b, "")
	typed := func(batch *sink.Batch) ([][]any, error) {
		rows := make([][]any, len(batch.Records))
		for i, r := range batch.Records {
			rows[i] = synth.TypedRecordRow(r.CleanRecord, r.Seq, batch.ID)
		}
		return rows, nil
	}
	group := sink.RecordGroup{Table: benchTypes}
	compare(b, s, openRaw(b), func(i int) sink.Batch { return recordBatch(g, i) }, typed, group.Name(), group.Columns())
}

// BenchmarkMySQLAttendance is the attendance path (events, daily summary,
// lineage, batch row) against a raw LOAD DATA LOCAL of the events alone.
func BenchmarkMySQLAttendance(b *testing.B) {
	g := synth.New(synth.Config{Users: 2000, DoubleEvery: 50})
	compare(b, openBench(b, ""), openRaw(b), func(i int) sink.Batch { return eventBatch(g, i) }, encodeEvents, eventsTable, eventColumns)
}

// BenchmarkMySQLMethods compares the two ways of sending rows on the same
// batches: LOAD DATA LOCAL INFILE and multi-row INSERT.
func BenchmarkMySQLMethods(b *testing.B) {
	for _, kind := range []string{"records", "events"} {
		for _, m := range []Method{LoadData, Insert} {
			b.Run(kind+"/"+string(m), func(b *testing.B) {
				s := openBench(b, m)
				g := synth.New(synth.Config{Users: 2000})
				rows := 0
				for i := 0; b.Loop(); i++ {
					var batch sink.Batch
					if kind == "records" {
						batch = recordBatch(g, i)
					} else {
						batch = eventBatch(g, i)
					}
					if _, err := s.Write(b.Context(), batch); err != nil {
						b.Fatal(err)
					}
					rows += batch.Len()
				}
				b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// benchTypes is the typed table of the records synth makes.
var benchTypes = synth.RecordTables()["orders"]
