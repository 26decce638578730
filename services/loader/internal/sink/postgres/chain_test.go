package postgres

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/services/loader/internal/daily"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
	"github.com/punchflow/punchflow/services/loader/internal/sink/sinktest"
	"github.com/punchflow/punchflow/services/loader/internal/synth"
)

// TestDaysChainOnBatchInFlight writes batch A and then batch B, which
// extends the same days, while A is still in flight: a session holds the
// days' locks, so A waits before writing its days, and B is planned from
// the days as A will write them. When A commits, B's update applies after
// it without reading a row; when A rolls back (its context ends while it
// waits), B's update misses and B reads the days and writes them the slow
// way. Either way every day equals its recomputation from the punches.
func TestDaysChainOnBatchInFlight(t *testing.T) {
	for _, rollback := range []bool{false, true} {
		name := "A commits"
		if rollback {
			name = "A rolls back"
		}
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			url := dbtest.PostgresURL(t)
			var logs servicetest.Buffer
			s, err := Open(ctx, url, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), WithMaxConns(4))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// Four users, one punch each per batch, on one day.
			g := synth.New(synth.Config{Users: 4})
			evs := sinktest.Events(g, 0, 12)
			first, a, b := sinktest.NewBatch("first", evs[:4], nil), sinktest.NewBatch("A", evs[4:8], nil), sinktest.NewBatch("B", evs[8:], nil)
			if _, err := s.Write(ctx, first); err != nil {
				t.Fatal(err)
			}

			hold, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer hold.Close(context.Background())
			tx, err := hold.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.Background())
			if _, err := tx.Exec(ctx, lockDaysSQL, int32(lockClass), lockIDs(sink.EventKeys(&a))); err != nil {
				t.Fatal(err)
			}
			waiters := func(n int) {
				t.Helper()
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					var waiting int
					if err := hold.QueryRow(ctx, `SELECT count(DISTINCT pid) FROM pg_locks
						WHERE locktype = 'advisory' AND NOT granted
						  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting); err != nil {
						t.Fatal(err)
					}
					if waiting == n {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d sessions wait for the days' locks, want %d", waiting, n)
					}
				}
			}

			ctxA, cancelA := context.WithCancel(ctx)
			defer cancelA()
			var wg sync.WaitGroup
			var errA, errB error
			wg.Go(func() { _, errA = s.Write(ctxA, a) })
			waiters(1)
			wg.Go(func() { _, errB = s.Write(ctx, b) })
			waiters(2)
			if rollback {
				cancelA()
				waiters(1)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if rollback != (errA != nil) {
				t.Fatalf("A: %v", errA)
			}
			if errB != nil {
				t.Fatalf("B: %v", errB)
			}

			readB := strings.Contains(logs.String(), `msg="days read before they are written" batch=B`)
			if readB != rollback {
				t.Errorf("B read its days first: %v, want %v; logs:\n%s", readB, rollback, logs.String())
			}
			db, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if n := sinktest.CheckDaily(t, db, sinktest.Postgres, daily.DefaultRules()); n != 4 {
				t.Errorf("%d days, want 4", n)
			}
			var loaded int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM attendance_events`).Scan(&loaded); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{false: 12, true: 8}[rollback]; loaded != want {
				t.Errorf("%d punches loaded, want %d", loaded, want)
			}
			if n := s.cache.plannedDays(); n != 0 {
				t.Errorf("%d days still planned after both batches ended", n)
			}
			if d, ok := s.cache.get(daily.Key{Site: evs[8].Site, UserID: evs[8].UserID, WorkDate: evs[8].WorkDate}); !ok || d.batch != "B" {
				t.Errorf("cached day of B's first punch: %+v, %v; want B's", d, ok)
			}
		})
	}
}
