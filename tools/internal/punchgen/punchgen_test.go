package punchgen

import (
	"testing"
	"time"
)

func TestRows(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, n := range []int{2, 1000, 20000} {
		start := PastStart(now, n, 0)
		rows := Rows(Config{Punches: n, Seed: 7, Start: start})
		if len(rows) != n {
			t.Fatalf("%d punches: got %d rows", n, len(rows))
		}
		seen := map[string]bool{}
		for _, r := range rows {
			key := r[1] + "|" + r[2] + "|" + r[3] + "|" + r[4]
			if seen[key] {
				t.Fatalf("duplicate punch identity %s", key)
			}
			seen[key] = true
			at, err := time.Parse(time.DateTime, r[3])
			if err != nil {
				t.Fatal(err)
			}
			// Local wall time at most 14h ahead of UTC (Asia/Kolkata is +5:30).
			if at.Add(-14 * time.Hour).After(now) {
				t.Fatalf("%d punches from %v: punch %v is not in the past", n, start, at)
			}
			if wd := at.Weekday(); wd == time.Saturday || wd == time.Sunday {
				t.Fatalf("weekend punch %v", at)
			}
		}
	}
	a := Rows(Config{Punches: 100, Seed: 1})
	b := Rows(Config{Punches: 100, Seed: 1})
	for i := range a {
		if a[i][3] != b[i][3] {
			t.Fatal("same seed, different punches")
		}
	}
}
