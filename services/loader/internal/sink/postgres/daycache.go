package postgres

import (
	"math/rand/v2"
	"sync"

	"github.com/punchflow/punchflow/services/loader/internal/daily"
)

// dayCacheGeneration is how many days one generation of a dayCache holds:
// the cache keeps between one and two generations, at most 32,768 days
// (about 16 MB, measured with the strings they hold), which covers today
// and yesterday of a large workforce.
const dayCacheGeneration = 1 << 14

// dayCache remembers the state of the days this Sink writes, so that the
// next batch can extend a day without reading its row: the days committed
// transactions wrote last, and the days planned by transactions still in
// flight (planFresh registers them), which are newer.
//
// A day planned from the cache is written by an update that applies only
// while the row still holds the batch_id and the revision of the state it
// was planned from (see summarize). A batch planned from a day another
// batch has in flight thus waits for that batch's commit (on the day's
// lock) and then applies; if that batch rolled back, or wrote something
// else, or another replica wrote the day since, the update misses and the
// day is read and written the slow way. So an entry that is out of date
// costs a read and never a wrong row.
//
// Committed days are kept in two generations: lookups look in both and
// move a day found in the older one to the current one; when the current
// one is full it becomes the older one and the days nobody asked for since
// are dropped.
type dayCache struct {
	mu       sync.Mutex
	cur, old map[daily.Key]cachedDay
	size     int // days per generation
	// planned holds the days of transactions in flight, by the plan that
	// wrote them last; commit and abort remove a plan's days.
	planned map[daily.Key]plannedDay
}

// cachedDay is a day as a transaction wrote it: its state, the batch
// (load_batches.batch_id) and the revision (daily_attendance.revision) it
// stamped on the row, and, once committed, the place of its COMMIT among
// the Sink's (Sink.commits).
type cachedDay struct {
	state    daily.State
	batch    string
	revision int64
	commit   uint64
}

// plannedDay is a day a transaction in flight is writing.
type plannedDay struct {
	cachedDay
	by *dayPlan
}

func newDayCache(size int) *dayCache {
	return &dayCache{cur: make(map[daily.Key]cachedDay), planned: make(map[daily.Key]plannedDay), size: size}
}

// newRevision returns a revision for a write of a day's state: random, so
// that two writes (two attempts of one batch, two replicas) never stamp
// the same one, but for a chance of 2⁻⁶⁴.
func newRevision() int64 { return int64(rand.Uint64()) }

// plan calls f with the newest state the cache knows of each of keys
// (known false for a day it does not know), holding the cache's lock: f
// must not call the cache. A day f returns ok for is recorded as planned
// by p, the day as p's transaction will write it.
func (c *dayCache) plan(p *dayPlan, keys []daily.Key, f func(i int, d cachedDay, known bool) (next cachedDay, ok bool, err error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range keys {
		d, known := c.getLocked(k)
		next, ok, err := f(i, d, known)
		if err != nil {
			return err
		}
		if ok {
			c.planned[k] = plannedDay{cachedDay: next, by: p}
		}
	}
	return nil
}

// getLocked returns the day planned last, or else the day committed last.
func (c *dayCache) getLocked(k daily.Key) (cachedDay, bool) {
	if d, ok := c.planned[k]; ok {
		return d.cachedDay, true
	}
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

// commit records the days the committed transaction of p wrote, its
// COMMIT the seq-th the Sink sent, and forgets what p planned (p may be
// nil: a transaction that planned nothing in the cache). A day a later
// COMMIT wrote already (its goroutine got here first) is kept.
func (c *dayCache) commit(p *dayPlan, days []cachedDay, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetLocked(p)
	for _, d := range days {
		k := d.state.Key
		d.commit = seq
		// Usually the day is in the current generation: one lookup and
		// one store.
		if have, ok := c.cur[k]; ok {
			if have.commit < seq {
				c.cur[k] = d
			}
			continue
		}
		if have, ok := c.old[k]; ok {
			if have.commit > seq {
				continue
			}
			delete(c.old, k)
		}
		c.putLocked(k, d)
	}
}

// abort forgets what p planned: its transaction rolled back.
func (c *dayCache) abort(p *dayPlan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetLocked(p)
}

// forgetLocked removes the days p planned that no later plan has
// planned since.
func (c *dayCache) forgetLocked(p *dayPlan) {
	if p == nil {
		return
	}
	for _, k := range p.keys {
		if d, ok := c.planned[k]; ok && d.by == p {
			delete(c.planned, k)
		}
	}
}

func (c *dayCache) putLocked(k daily.Key, d cachedDay) {
	if _, ok := c.cur[k]; !ok && len(c.cur) >= c.size {
		c.old, c.cur = c.cur, make(map[daily.Key]cachedDay, c.size)
	}
	c.cur[k] = d
}
