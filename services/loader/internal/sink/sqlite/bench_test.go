package sqlite_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/punchflow/punchflow/services/loader/internal/sink/sqlite"
)

// BenchmarkSQLiteWrite measures batches of new events.
func BenchmarkSQLiteWrite(b *testing.B) {
	for _, size := range []int{500, 5000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"), slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			evs := events(0, size)
			rows := 0
			for i := 0; b.Loop(); i++ {
				for j := range evs {
					evs[j].ID = fmt.Sprintf("write-%07d-%05d", i, j)
				}
				res, err := s.Write(b.Context(), batch(fmt.Sprintf("write-%d", i), evs))
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
