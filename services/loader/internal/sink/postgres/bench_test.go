package postgres_test

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/services/loader/internal/sink/postgres"
)

var benchSizes = []int{500, 5000}

func openBench(b *testing.B) *postgres.Sink {
	b.Helper()
	s, err := postgres.Open(b.Context(), dbtest.PostgresURL(b), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkPostgresCopy measures the fast path: batches of new events,
// copied straight into attendance_events.
func BenchmarkPostgresCopy(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := openBench(b)
			evs := events(0, size)
			rows := 0
			for i := 0; b.Loop(); i++ {
				for j := range evs {
					evs[j].ID = fmt.Sprintf("copy-%07d-%05d", i, j)
				}
				res, err := s.Write(b.Context(), batch(fmt.Sprintf("copy-%d", i), evs))
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

// BenchmarkPostgresMerge measures the replay path: every event of the batch
// is already loaded, so the COPY fails and the merge counts duplicates.
func BenchmarkPostgresMerge(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := openBench(b)
			evs := events(0, size)
			if _, err := s.Write(b.Context(), batch("preload", evs)); err != nil {
				b.Fatal(err)
			}
			rows := 0
			for i := 0; b.Loop(); i++ {
				res, err := s.Write(b.Context(), batch(fmt.Sprintf("replay-%d", i), evs))
				if err != nil {
					b.Fatal(err)
				}
				if res.Duplicates != size {
					b.Fatalf("batch %d: %+v, want %d duplicates", i, res, size)
				}
				rows += size
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
