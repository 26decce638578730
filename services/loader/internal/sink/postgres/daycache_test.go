package postgres

import (
	"fmt"
	"testing"

	"github.com/punchflow/punchflow/services/loader/internal/daily"
)

// cacheDay is day i as batch wrote it.
func cacheDay(i int, batch string) cachedDay {
	k := daily.Key{Site: "hq", UserID: fmt.Sprint(i), WorkDate: "2024-03-25"}
	return cachedDay{state: daily.State{Day: daily.Day{Key: k}}, batch: batch, revision: newRevision()}
}

func days(batch string, is ...int) []cachedDay {
	var out []cachedDay
	for _, i := range is {
		out = append(out, cacheDay(i, batch))
	}
	return out
}

func TestDayCacheKeepsTwoGenerations(t *testing.T) {
	c := newDayCache(3)
	key := func(i int) daily.Key { return cacheDay(i, "").state.Key }
	c.commit(nil, days("b1", 1, 2, 3), 1)
	c.commit(nil, days("b2", 4), 2) // the first generation becomes the old one
	if n := cached(c); n != 4 {
		t.Fatalf("%d days cached, want 4", n)
	}
	// Asking for day 1 moves it to the current generation, which survives
	// the next turn; days 2 and 3, not asked for, do not.
	if d, ok := c.get(key(1)); !ok || d.batch != "b1" {
		t.Fatalf("day 1: %+v, %v", d, ok)
	}
	c.commit(nil, days("b3", 5, 6), 3)
	for i, want := range map[int]string{1: "b1", 5: "b3", 6: "b3"} {
		if d, ok := c.get(key(i)); !ok || d.batch != want {
			t.Errorf("day %d: %+v, %v, want batch %s", i, d, ok, want)
		}
	}
	for _, i := range []int{2, 3} {
		if _, ok := c.get(key(i)); ok {
			t.Errorf("day %d still cached after two turns", i)
		}
	}
	if n := cached(c); n > 2*3 {
		t.Errorf("%d days cached, more than two generations of 3", n)
	}
	// A day written again replaces its entry.
	c.commit(nil, days("b4", 5), 4)
	if d, _ := c.get(key(5)); d.batch != "b4" {
		t.Errorf("day 5 after a rewrite: batch %s, want b4", d.batch)
	}
}

// TestDayCachePlanned: a day planned by a transaction in flight is what the
// next plan starts from; it is forgotten when that transaction ends, and
// the days it committed are kept; a later plan of the same day is not
// forgotten with the earlier one.
func TestDayCachePlanned(t *testing.T) {
	c := newDayCache(16)
	c.commit(nil, days("b0", 1, 2), 1)
	key := func(i int) daily.Key { return cacheDay(i, "").state.Key }

	// plan records, for plan p, each day as batch will write it, and
	// returns what it started from.
	plan := func(p *dayPlan, batch string, is ...int) map[int]string {
		p.keys = nil
		for _, i := range is {
			p.keys = append(p.keys, key(i))
		}
		from := map[int]string{}
		err := c.plan(p, p.keys, func(at int, d cachedDay, known bool) (cachedDay, bool, error) {
			if known {
				from[is[at]] = d.batch
			}
			return cacheDay(is[at], batch), true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return from
	}
	p1, p2, p3 := &dayPlan{}, &dayPlan{}, &dayPlan{}
	if from := plan(p1, "b1", 1, 3); from[1] != "b0" || from[3] != "" {
		t.Fatalf("b1 planned from %v, want day 1 from b0, day 3 unknown", from)
	}
	// b2 starts from what b1, in flight, writes.
	if from := plan(p2, "b2", 1, 3); from[1] != "b1" || from[3] != "b1" {
		t.Fatalf("b2 planned from %v, want b1's days", from)
	}
	// b1 commits: b2's plans stay the newest.
	c.commit(p1, days("b1", 1, 3), 2)
	if d, _ := c.get(key(1)); d.batch != "b2" {
		t.Errorf("day 1 after b1 committed: from %s, want b2 (in flight)", d.batch)
	}
	// b2 rolls back: the days b1 committed are what is known.
	c.abort(p2)
	for _, i := range []int{1, 3} {
		if d, ok := c.get(key(i)); !ok || d.batch != "b1" {
			t.Errorf("day %d after b2 rolled back: %+v, %v, want b1's", i, d, ok)
		}
	}
	// A plan that rolls back leaves the committed day.
	plan(p3, "b3", 2)
	c.abort(p3)
	if d, _ := c.get(key(2)); d.batch != "b0" {
		t.Errorf("day 2 after b3 rolled back: %s, want b0", d.batch)
	}
	if n := c.plannedDays(); n != 0 {
		t.Errorf("%d planned days left after every transaction ended", n)
	}
}

// TestDayCacheCommitOrder: commits recorded out of the order they were
// sent in (two goroutines racing to the cache) keep the later commit's day.
func TestDayCacheCommitOrder(t *testing.T) {
	c := newDayCache(16)
	key := cacheDay(1, "").state.Key
	c.commit(nil, days("later", 1), 7)
	c.commit(nil, days("earlier", 1), 6)
	if d, _ := c.get(key); d.batch != "later" {
		t.Errorf("day 1: batch %s, want the later commit's", d.batch)
	}
	c.commit(nil, days("latest", 1), 8)
	if d, _ := c.get(key); d.batch != "latest" {
		t.Errorf("day 1: batch %s, want latest", d.batch)
	}
}

// cached is how many committed days c holds.
func cached(c *dayCache) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}

// plannedDays is how many days c holds as planned by transactions in
// flight.
func (c *dayCache) plannedDays() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.planned)
}

// get returns the day the next plan would start from, or false.
func (c *dayCache) get(k daily.Key) (cachedDay, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(k)
}
