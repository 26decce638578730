package sqlsource

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/extract"
	"github.com/punchflow/punchflow/services/collector/internal/jstest"
)

// TestLiveLoopWithLookBack runs the live loop over a real table: the first
// run reads everything up to now; a row committed late with an older
// updated_at inside the look-back is picked up by the next run, rows read
// twice are dropped by their ids, and a changed row arrives as a new
// version.
func TestLiveLoopWithLookBack(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.driver, func(t *testing.T) {
			table := seed(t, d, 90) // rows every 20 minutes in threes: 2025-08-01 00:00 to 09:40
			src := open(t, d, table, nil)
			env := jstest.Start(t, true)
			now := base.Add(10 * time.Hour)
			deps := extract.Deps{Pub: env.JS, DLQ: env.DLQ, Metrics: env.Metrics, Log: env.Log, Now: func() time.Time { return now }}
			inc := extract.NewIncremental(src, extract.Schedule{Initial: 24 * time.Hour, Lookback: 30 * time.Minute}, env.KV, deps, env.JS)
			ctx := context.Background()
			if _, err := inc.RunOnce(ctx, "run-1"); err != nil {
				t.Fatal(err)
			}
			if n := env.Count(t, "RAW", ""); n != 90 {
				t.Fatalf("RAW holds %d rows, want 90", n)
			}

			db := rawDB(t, d)
			p := func(i int) string {
				if d.driver == MySQL {
					return "?"
				}
				return fmt.Sprintf("$%d", i)
			}
			ins := fmt.Sprintf("INSERT INTO %s (id, region, employee, days, approved, updated_at) VALUES (%s, 'west', 'E9', 1, true, %s)", table, p(1), p(2))
			// Committed late: 10 minutes before the cursor (inside the
			// look-back) and 2 hours before it (outside: not seen live, a
			// backfill's job).
			for id, at := range map[int]time.Time{1000: now.Add(-10 * time.Minute), 1001: now.Add(-2 * time.Hour)} {
				if _, err := db.Exec(ins, id, at); err != nil {
					t.Fatal(err)
				}
			}
			upd := fmt.Sprintf("UPDATE %s SET days = 7, updated_at = %s WHERE id = 5", table, p(1))
			if _, err := db.Exec(upd, now.Add(5*time.Minute)); err != nil {
				t.Fatal(err)
			}
			now = now.Add(10 * time.Minute)
			st, err := inc.RunOnce(ctx, "run-2")
			if err != nil {
				t.Fatal(err)
			}
			// The second run re-read the look-back (rows 87–89 again, same
			// ids), found the late row 1000 and the new version of row 5.
			if n := env.Count(t, "RAW", ""); n != 92 {
				t.Fatalf("RAW holds %d after the second run, want 92 (late row and changed row); run %+v", n, st)
			}
			c, _, _ := extract.LoadCursor(ctx, env.KV, "hr-leave")
			if !c.Until.Equal(now) {
				t.Fatalf("cursor %v, want %v", c.Until, now)
			}
		})
	}
}

func rawDB(t *testing.T, d database) *sql.DB {
	t.Helper()
	driver := "pgx"
	if d.driver == MySQL {
		driver = "mysql"
	}
	db, err := sql.Open(driver, d.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
