package backfill

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/apisim"
	"github.com/punchflow/punchflow/services/collector/internal/apisource"
	"github.com/punchflow/punchflow/services/collector/internal/extract"
	"github.com/punchflow/punchflow/services/collector/internal/jstest"
	"github.com/punchflow/punchflow/services/collector/internal/publish"
	"github.com/punchflow/punchflow/services/collector/internal/sources"
)

// BenchmarkBackfill reads 30 days × 3 sources × 100,000 records from apisim
// with realistic latency (180 ms a page plus 40 µs a record, ±20 %: about
// 200 ms for a page of 500, as hosted business APIs answer; one-day
// windows) into JetStream (file storage), once with every source sequential
// and once with every source parallel (8 windows in flight), each into a
// fresh server, and reports both durations (seq_s, par_s), their ratio
// (goal ≥ 3) and the records per second the parallel run published. The
// parallel run is bound by CPU (collector, apisim and NATS share the
// machine), so the ratio drops on a busy machine. PUNCHFLOW_BENCH_RECORDS
// overrides the records per source.
func BenchmarkBackfill(b *testing.B) {
	records := 100000
	if v := os.Getenv("PUNCHFLOW_BENCH_RECORDS"); v != "" {
		fmt.Sscan(v, &records)
	}
	from := time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)
	sim, err := apisim.Start(apisim.Config{Seed: 30, From: from, To: from.AddDate(0, 0, 30), Records: records, MaxPageSize: 1000,
		Faults: apisim.Faults{Latency: 180 * time.Millisecond, PerRecord: 40 * time.Microsecond, Jitter: 0.2}}, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	styles := map[apisim.Dataset]string{apisim.Orders: "page", apisim.Tickets: "cursor", apisim.Payments: "offset"}
	run := func(parallel bool) (time.Duration, int) {
		env := jstest.Start(b, false)
		var jobs []Job
		for _, ds := range apisim.Datasets {
			f, err := sources.Parse([]byte("api:\n" + apisim.SourceYAML(string(ds), sim.URL(), styles[ds], ds, 500, "")))
			if err != nil {
				b.Fatal(err)
			}
			src, err := apisource.New(f.API[0].Config, nil, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			ws, err := Split("2025-08-01", "2025-08-30", 1, time.UTC)
			if err != nil {
				b.Fatal(err)
			}
			jobs = append(jobs, Job{Source: src, Windows: ws, Parallel: parallel, Workers: 8})
		}
		o := Options{Deps: extract.Deps{Pub: env.JS, DLQ: env.DLQ, Metrics: env.Metrics, Log: env.Log, Publish: publish.Options{Window: 2048}}, KV: env.KV}
		start := time.Now()
		sum, err := Run(context.Background(), jobs, o)
		took := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, p := range sum.Sources {
			n += p.Records
		}
		if n != 3*records {
			b.Fatalf("published %d records, want %d", n, 3*records)
		}
		return took, n
	}
	b.ResetTimer()
	var seq, par time.Duration
	var n int
	for range b.N {
		s, _ := run(false)
		p, m := run(true)
		seq, par, n = seq+s, par+p, n+m
	}
	b.ReportMetric(seq.Seconds()/float64(b.N), "seq_s")
	b.ReportMetric(par.Seconds()/float64(b.N), "par_s")
	b.ReportMetric(seq.Seconds()/par.Seconds(), "ratio")
	b.ReportMetric(float64(n)/par.Seconds(), "rec/s")
}
