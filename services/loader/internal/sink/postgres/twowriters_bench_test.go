package postgres

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
	"github.com/punchflow/punchflow/services/loader/internal/synth"
)

// BenchmarkPostgresAttendanceTwoWriters writes attendance batches from two
// goroutines, as the loader's two writers do, where consecutive batches
// hold punches of the same days (2,000 users, batches of 2,000: every
// batch holds the next punch of every user, as a backlog does): a batch
// plans its days on top of those the batch before it, still being
// written, planned (see dayCache), so the two overlap instead of one
// reading what the other wrote.
func BenchmarkPostgresAttendanceTwoWriters(b *testing.B) {
	s, err := Open(b.Context(), dbtest.PostgresURL(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	g := synth.New(synth.Config{Users: 2000})
	const size, batches = 2000, 24
	var all []sink.Batch
	for i := range batches {
		bt := sink.Batch{ID: fmt.Sprintf("b%d", i), Sink: "pg", Started: time.Now()}
		for j := range size {
			k := i*size + j
			bt.Events = append(bt.Events, sink.Event{AttendanceEvent: g.Event(k), Seq: uint64(k + 1)})
		}
		bt.FirstSeq, bt.LastSeq = bt.Events[0].Seq, bt.Events[size-1].Seq
		all = append(all, bt)
	}
	for b.Loop() {
		start := time.Now()
		next := make(chan sink.Batch)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for bt := range next {
					if _, err := s.Write(b.Context(), bt); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for _, bt := range all {
			next <- bt
		}
		close(next)
		wg.Wait()
		b.ReportMetric(float64(size*batches)/time.Since(start).Seconds(), "rows/s")
	}
}
