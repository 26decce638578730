package postgres

import (
	"sync"

	"github.com/punchflow/punchflow/services/loader/internal/daily"
)

// dayCacheGeneration is how many days one generation of a dayCache holds:
// the cache keeps between one and two generations, at most 32,768 days
// (about 16 MB, measured with the strings they hold), which covers today
// and yesterday of a large workforce.
const dayCacheGeneration = 1 << 14

// dayCache remembers, for the days this Sink wrote last, the state it
// wrote and the batch that wrote it, so that the next batch can extend a
// day without reading its row: the row is rewritten only while its
// batch_id is still that batch (see summarize), so a cache entry that is
// out of date (another replica wrote the day since, a commit whose outcome
// was lost) costs a read and never a wrong row.
//
// It holds two generations: lookups look in both and move a day found in
// the older one to the current one; when the current one is full it
// becomes the older one and the days nobody asked for since are dropped.
type dayCache struct {
	mu       sync.Mutex
	cur, old map[daily.Key]cachedDay
	size     int // days per generation
}

// cachedDay is a day as a committed transaction left it.
type cachedDay struct {
	state daily.State
	batch string // load_batches.batch_id of that transaction
}

func newDayCache(size int) *dayCache {
	return &dayCache{cur: make(map[daily.Key]cachedDay), size: size}
}

// each calls f with the cached day of each of keys (ok false for a day it
// does not hold), holding the cache's lock: f must not call the cache.
func (c *dayCache) each(keys []daily.Key, f func(i int, d cachedDay, ok bool) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range keys {
		d, ok := c.getLocked(k)
		if err := f(i, d, ok); err != nil {
			return err
		}
	}
	return nil
}

func (c *dayCache) getLocked(k daily.Key) (cachedDay, bool) {
	if d, ok := c.cur[k]; ok {
		return d, true
	}
	d, ok := c.old[k]
	if ok {
		delete(c.old, k)
		c.putLocked(k, d)
	}
	return d, ok
}

// put records days as written by the committed batch.
func (c *dayCache) put(batch string, days []daily.State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range days {
		delete(c.old, d.Key)
		c.putLocked(d.Key, cachedDay{state: d, batch: batch})
	}
}

func (c *dayCache) putLocked(k daily.Key, d cachedDay) {
	if _, ok := c.cur[k]; !ok && len(c.cur) >= c.size {
		c.old, c.cur = c.cur, make(map[daily.Key]cachedDay, c.size)
	}
	c.cur[k] = d
}
