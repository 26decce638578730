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
	c.put("b1", []daily.State{day(1), day(2), day(3)})
	c.put("b2", []daily.State{day(4)}) // the first generation becomes the old one
	if n := cached(c); n != 4 {
		t.Fatalf("%d days cached, want 4", n)
	}
	// Asking for day 1 moves it to the current generation, which survives
	// the next turn; days 2 and 3, not asked for, do not.
	if d, ok := c.get(day(1).Key); !ok || d.batch != "b1" {
		t.Fatalf("day 1: %+v, %v", d, ok)
	}
	c.put("b3", []daily.State{day(5), day(6)})
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
	c.put("b4", []daily.State{day(5)})
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

// get returns the cached day of k, or false.
func (c *dayCache) get(k daily.Key) (cachedDay, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(k)
}
