package postgres

import (
	"fmt"
	"testing"

	"github.com/punchflow/punchflow/services/loader/internal/daily"
)

func TestDayCacheKeepsTwoGenerations(t *testing.T) {
	c := newDayCache(3)
	day := func(i int) daily.State {
		return daily.State{Day: daily.Day{Key: daily.Key{Site: "hq", UserID: fmt.Sprint(i), WorkDate: "2024-03-25"}}}
	}
	c.put("b1", []daily.State{day(1), day(2), day(3)}, nil)
	c.put("b2", []daily.State{day(4)}, nil) // the first generation becomes the old one
	if n := cached(c); n != 4 {
		t.Fatalf("%d days cached, want 4", n)
	}
	// Asking for day 1 moves it to the current generation, which survives
	// the next turn; days 2 and 3, not asked for, do not.
	if d, ok := c.get(day(1).Key); !ok || d.batch != "b1" {
		t.Fatalf("day 1: %+v, %v", d, ok)
	}
	c.put("b3", []daily.State{day(5), day(6)}, nil)
	for i, want := range map[int]string{1: "b1", 5: "b3", 6: "b3"} {
		if d, ok := c.get(day(i).Key); !ok || d.batch != want {
			t.Errorf("day %d: %+v, %v, want batch %s", i, d, ok, want)
		}
	}
	for _, i := range []int{2, 3} {
		if _, ok := c.get(day(i).Key); ok {
			t.Errorf("day %d still cached after two turns", i)
		}
	}
	if n := cached(c); n > 2*3 {
		t.Errorf("%d days cached, more than two generations of 3", n)
	}
	// A day written again replaces its entry.
	c.put("b4", []daily.State{day(5)}, nil)
	if d, _ := c.get(day(5).Key); d.batch != "b4" {
		t.Errorf("day 5 after a rewrite: batch %s, want b4", d.batch)
	}
}

// cached is how many days c holds.
func cached(c *dayCache) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}

// TestDayCachePending: a batch plans on top of the days a batch still
// being written planned; abandoning or committing a batch forgets its
// pending days, committing keeps them as committed.
func TestDayCachePending(t *testing.T) {
	c := newDayCache(8)
	k := daily.Key{Site: "hq", UserID: "1", WorkDate: "2024-03-25"}
	st := func(n int) daily.State { return daily.State{Day: daily.Day{Key: k, PunchCount: n}} }
	c.put("b0", []daily.State{st(1)}, nil)
	from := func(batch string) (cachedDay, bool) {
		var got cachedDay
		var had bool
		if err := c.plan(batch, []daily.Key{k}, func(_ int, d cachedDay, ok bool) (daily.State, bool, error) {
			got, had = d, ok
			return st(d.state.PunchCount + 1), true, nil
		}); err != nil {
			t.Fatal(err)
		}
		return got, had
	}
	if d, ok := from("b1"); !ok || d.batch != "b0" || d.state.PunchCount != 1 {
		t.Fatalf("b1 planned from %+v, %v; want b0's committed day", d, ok)
	}
	// b1 is being written: b2 plans on top of it.
	if d, ok := from("b2"); !ok || d.batch != "b1" || d.state.PunchCount != 2 {
		t.Fatalf("b2 planned from %+v, %v; want b1's pending day", d, ok)
	}
	// b2 fails; b1 is still pending and b2's day is gone.
	c.abandon("b2", []daily.Key{k})
	if d := c.pending[k]; d.batch == "b2" {
		t.Fatalf("pending after b2 failed: %+v", d)
	}
	// b1 was overtaken by b2 as the pending day, so b2's abandon removed
	// it; b3 plans from the committed day.
	if d, ok := from("b3"); !ok || d.batch != "b0" {
		t.Fatalf("b3 planned from %+v, %v; want b0's committed day", d, ok)
	}
	c.put("b3", []daily.State{st(2)}, []daily.Key{k})
	if len(c.pending) != 0 {
		t.Errorf("pending after b3 committed: %v", c.pending)
	}
	if d, ok := c.get(k); !ok || d.batch != "b3" {
		t.Errorf("committed day: %+v, %v; want b3's", d, ok)
	}
}

// get returns the committed day of k, or false.
func (c *dayCache) get(k daily.Key) (cachedDay, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(k)
}
