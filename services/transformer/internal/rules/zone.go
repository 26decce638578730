package rules

import (
	"time"
)

// zoneTable is a time zone's offsets as a sorted list of the instants at
// which each offset begins, from tableFrom to tableTo, so that the offset
// at an instant is a binary search instead of a time.Location lookup. It
// is built once per zone and read-only afterwards.
type zoneTable struct {
	loc    *time.Location
	starts []int64 // Unix seconds at which offs[i] begins; starts[0] = tableFrom
	offs   []int64
}

// The table covers 1900 to 2200; instants outside fall back to the time
// package (same results, slower).
var (
	tableFrom = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	tableTo   = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
)

func newZoneTable(loc *time.Location) *zoneTable {
	z := &zoneTable{loc: loc}
	u := tableFrom
	for u < tableTo {
		t := time.Unix(u, 0).In(loc)
		_, off := t.Zone()
		if n := len(z.offs); n == 0 || z.offs[n-1] != int64(off) {
			z.starts = append(z.starts, u)
			z.offs = append(z.offs, int64(off))
		}
		_, end := t.ZoneBounds()
		switch {
		case end.IsZero(): // the offset never changes again
			u = tableTo
		case end.Unix() <= u:
			// ZoneBounds returns the instant itself at the end of some leap
			// years of a zone's rule-extended future (Go 1.26); step past it.
			u += secondsPerDay
		default:
			u = end.Unix()
		}
	}
	return z
}

// offsetAt is the UTC offset in seconds in force at a Unix second.
func (z *zoneTable) offsetAt(u int64) int64 {
	if u < tableFrom || u >= tableTo {
		_, off := time.Unix(u, 0).In(z.loc).Zone()
		return int64(off)
	}
	return z.offs[z.index(u)]
}

// index returns i with starts[i] <= u < starts[i+1] (u inside the table).
func (z *zoneTable) index(u int64) int {
	lo, hi := 0, len(z.starts) // invariant: starts[lo] <= u < starts[hi]
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if z.starts[m] <= u {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

// resolve interprets wall-clock seconds (a zone-less civil time) in the
// zone and returns the Unix second it denotes, with FlagDSTGap or
// FlagDSTOverlap when it is not a wall clock that happened exactly once.
// See Resolve.
func (z *zoneTable) resolve(wall int64) (int64, string) {
	if len(z.offs) == 1 {
		return wall - z.offs[0], ""
	}
	// Fast path: the candidate instant lies more than a day inside one
	// offset period, so no transition is near and it is the only answer
	// (the full rule below would find the same).
	if wall > tableFrom+2*secondsPerDay && wall < tableTo-2*secondsPerDay {
		i := z.index(wall)
		c := wall - z.offs[i]
		if j := z.index(c); j == i || z.offs[j] == z.offs[i] {
			i = j
			if z.starts[i] <= c-secondsPerDay && (i+1 == len(z.starts) || c+secondsPerDay < z.starts[i+1]) {
				return c, ""
			}
		}
	}
	before := z.offsetAt(wall - secondsPerDay)
	after := z.offsetAt(wall + secondsPerDay)
	c1 := wall - before
	ok1 := z.offsetAt(c1) == before
	if before == after {
		if ok1 {
			return c1, ""
		}
		return c1, FlagDSTGap // only when two transitions lie within two days
	}
	c2 := wall - after
	ok2 := z.offsetAt(c2) == after
	switch {
	case ok1 && ok2 && c1 != c2:
		return min(c1, c2), FlagDSTOverlap
	case ok1:
		return c1, ""
	case ok2:
		return c2, ""
	default:
		return c1, FlagDSTGap
	}
}

// Resolve interprets a zone-less wall clock in loc deterministically. A wall
// clock that exists once maps to that instant. One that falls in a
// daylight-saving gap (it never happened) maps to the instant the same wall
// clock denotes under the offset in force before the gap, which lies after
// the gap, and is flagged FlagDSTGap. One that happened twice (the hour
// repeated when clocks go back) maps to the earlier instant and is flagged
// FlagDSTOverlap. Only wall's clock fields are used, not its location; the
// sub-second part is kept.
//
// Resolve is the definition on the time package; Apply uses the same rule
// on precomputed zone tables (zoneTable.resolve), which tests hold to it.
func Resolve(wall time.Time, loc *time.Location) (time.Time, string) {
	naive := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), 0, time.UTC)
	_, before := naive.Add(-24 * time.Hour).In(loc).Zone()
	_, after := naive.Add(24 * time.Hour).In(loc).Zone()
	c1 := naive.Add(-time.Duration(before) * time.Second)
	c2 := naive.Add(-time.Duration(after) * time.Second)
	same := func(c time.Time) bool {
		l := c.In(loc)
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC).Equal(naive)
	}
	ns := time.Duration(wall.Nanosecond())
	ok1, ok2 := same(c1), same(c2)
	switch {
	case ok1 && ok2 && !c1.Equal(c2):
		if c2.Before(c1) {
			c1 = c2
		}
		return c1.Add(ns), FlagDSTOverlap
	case ok1:
		return c1.Add(ns), ""
	case ok2:
		return c2.Add(ns), ""
	}
	return c1.Add(ns), FlagDSTGap
}
