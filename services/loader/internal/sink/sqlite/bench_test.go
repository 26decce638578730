package sqlite_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/loader/internal/sink/sinktest"
	"github.com/punchflow/punchflow/services/loader/internal/sink/sqlite"
	"github.com/punchflow/punchflow/services/loader/internal/synth"
)

// BenchmarkSQLiteWrite measures batches of new attendance events from a
// workforce of 2,000 (each batch touching as many days as it has events),
// daily summary included, with the loader's synchronous=FULL.
func BenchmarkSQLiteWrite(b *testing.B) {
	for _, size := range []int{500, 5000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"), slog.New(slog.DiscardHandler), sqlite.WithSynchronousFull())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			g := synth.New(synth.Config{Users: 2000, DoubleEvery: 50})
			rows := 0
			for i := 0; b.Loop(); i++ {
				batch := sinktest.NewBatch(fmt.Sprintf("write-%d", i), sinktest.Events(g, i*size, size), nil)
				batch.Started = time.Now()
				res, err := s.Write(b.Context(), batch)
				if err != nil {
					b.Fatal(err)
				}
				if res.Inserted != size {
					b.Fatalf("batch %d: %+v, want %d inserted", i, res, size)
				}
				rows += size
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
