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
//
// It also holds the days that batches still being written planned
// (pending): the next batch plans on top of them, expecting the row to
// carry the pending batch's id. Its UPDATE waits for that batch's locks,
// so it rewrites the row once that batch committed; if that batch failed,
// the row carries another id and the day goes the slow way. So two
// writers can work on the same days at once (consecutive batches of a
// backlog often do) without planning from a state already outdated.
type dayCache struct {
	mu       sync.Mutex
	cur, old map[daily.Key]cachedDay
	size     int // days per generation
	pending  map[daily.Key]cachedDay
}

// cachedDay is a day as a committed transaction left it.
type cachedDay struct {
	state daily.State
	batch string // load_batches.batch_id of that transaction
}

func newDayCache(size int) *dayCache {
	return &dayCache{cur: make(map[daily.Key]cachedDay), size: size, pending: make(map[daily.Key]cachedDay)}
}

// plan calls f with the day of each of keys to plan batch from: the one a
// batch still being written planned, else the committed one (ok false for
// a day it holds neither of). f returns the state batch will write, and
// whether it writes it without a read; those days become pending until
// commit or abandon. It holds the cache's lock: f must not call the cache.
func (c *dayCache) plan(batch string, keys []daily.Key, f func(i int, d cachedDay, ok bool) (daily.State, bool, error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range keys {
		d, ok := c.pending[k]
		if !ok {
			d, ok = c.getLocked(k)
		}
		st, staged, err := f(i, d, ok)
		if err != nil {
			return err
		}
		if staged {
			c.pending[k] = cachedDay{state: st, batch: batch}
		}
	}
	return nil
}

// abandon forgets the pending days of batch, which will not commit.
func (c *dayCache) abandon(batch string, keys []daily.Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if d, ok := c.pending[k]; ok && d.batch == batch {
			delete(c.pending, k)
		}
	}
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

// put records days as written by the committed batch, and forgets the
// batch's pending days (keys: every day it planned).
func (c *dayCache) put(batch string, days []daily.State, keys []daily.Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range days {
		delete(c.old, d.Key)
		c.putLocked(d.Key, cachedDay{state: d, batch: batch})
	}
	for _, k := range keys {
		if d, ok := c.pending[k]; ok && d.batch == batch {
			delete(c.pending, k)
		}
	}
}

func (c *dayCache) putLocked(k daily.Key, d cachedDay) {
	if _, ok := c.cur[k]; !ok && len(c.cur) >= c.size {
		c.old, c.cur = c.cur, make(map[daily.Key]cachedDay, c.size)
	}
	c.cur[k] = d
}
