// Package schedule computes when healthwatch's reports and payroll
// escalations are due: daily wall-clock times in a time zone, and payroll
// cut-offs (monthly, weekly or once). It is pure; callers pass the window to
// look at, so a missed slot (a restart across 08:00) is found by looking
// back, and every replica computes the same slot instants.
package schedule

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Clock is a wall-clock time of day.
type Clock struct{ Hour, Minute int }

// ParseClock reads "HH:MM" (24-hour).
func ParseClock(s string) (Clock, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return Clock{}, fmt.Errorf("%q is not a time of day; write HH:MM, e.g. 08:00", s)
	}
	return Clock{t.Hour(), t.Minute()}, nil
}

func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", c.Hour, c.Minute) }

// on returns the instant of c on the given civil date in loc. A time that
// does not exist that day (a daylight-saving gap) moves forward by the
// gap, as time.Date does.
func (c Clock) on(y int, m time.Month, d int, loc *time.Location) time.Time {
	return time.Date(y, m, d, c.Hour, c.Minute, 0, 0, loc)
}

// Daily returns the instants of the clocks, in loc, that fall in (from, to],
// sorted.
func Daily(from, to time.Time, clocks []Clock, loc *time.Location) []time.Time {
	var out []time.Time
	if !to.After(from) {
		return nil
	}
	start := from.In(loc).AddDate(0, 0, -1)
	end := to.In(loc).AddDate(0, 0, 1)
	for day := civil(start); !day.after(civil(end)); day = day.next() {
		for _, c := range clocks {
			t := c.on(day.y, day.m, day.d, loc)
			if t.After(from) && !t.After(to) {
				out = append(out, t)
			}
		}
	}
	sortTimes(out)
	return dedupe(out)
}

// Cutoff is a recurring or one-off payroll cut-off in the policy's zone.
type Cutoff struct {
	Kind    string // "monthly", "weekly" or "once"
	Day     int    // monthly: day of month (1-31; 0 = last day); weekly: time.Weekday
	Clock   Clock
	Once    time.Time // once: the civil date and time (its location is ignored)
	Written string
}

// ParseCutoff reads one cut-off:
//
//	monthly 25 12:00     the 25th of every month (a shorter month: its last day)
//	monthly last 18:00   the last day of every month
//	weekly fri 17:00     every Friday
//	2026-12-23 12:00     once
func ParseCutoff(s string) (Cutoff, error) {
	f := strings.Fields(s)
	bad := func(why string) (Cutoff, error) {
		return Cutoff{}, fmt.Errorf("cut-off %q: %s (write \"monthly 25 12:00\", \"monthly last 18:00\", \"weekly fri 17:00\" or \"2026-12-23 12:00\")", s, why)
	}
	if len(f) == 2 {
		t, err := time.Parse("2006-01-02 15:04", f[0]+" "+f[1])
		if err != nil {
			return bad("not a date and time")
		}
		return Cutoff{Kind: "once", Once: t, Clock: Clock{t.Hour(), t.Minute()}, Written: s}, nil
	}
	if len(f) != 3 {
		return bad("wrong number of words")
	}
	clock, err := ParseClock(f[2])
	if err != nil {
		return bad(err.Error())
	}
	switch strings.ToLower(f[0]) {
	case "monthly":
		if strings.EqualFold(f[1], "last") {
			return Cutoff{Kind: "monthly", Day: 0, Clock: clock, Written: s}, nil
		}
		d, err := strconv.Atoi(f[1])
		if err != nil || d < 1 || d > 31 {
			return bad("day of month must be 1 to 31 or last")
		}
		return Cutoff{Kind: "monthly", Day: d, Clock: clock, Written: s}, nil
	case "weekly":
		for wd := time.Sunday; wd <= time.Saturday; wd++ {
			name := strings.ToLower(wd.String())
			if w := strings.ToLower(f[1]); w == name || w == name[:3] {
				return Cutoff{Kind: "weekly", Day: int(wd), Clock: clock, Written: s}, nil
			}
		}
		return bad("weekday must be mon, tue, wed, thu, fri, sat or sun")
	}
	return bad("starts with neither monthly nor weekly nor a date")
}

func (c Cutoff) String() string { return c.Written }

// Between returns the cut-offs in (from, to], in loc, sorted.
func (c Cutoff) Between(from, to time.Time, loc *time.Location) []time.Time {
	var out []time.Time
	in := func(t time.Time) {
		if t.After(from) && !t.After(to) {
			out = append(out, t)
		}
	}
	if c.Kind == "once" {
		in(time.Date(c.Once.Year(), c.Once.Month(), c.Once.Day(), c.Clock.Hour, c.Clock.Minute, 0, 0, loc))
		return out
	}
	start, end := civil(from.In(loc).AddDate(0, 0, -1)), civil(to.In(loc).AddDate(0, 0, 1))
	for day := start; !day.after(end); day = day.next() {
		switch c.Kind {
		case "weekly":
			if time.Date(day.y, day.m, day.d, 12, 0, 0, 0, time.UTC).Weekday() == time.Weekday(c.Day) {
				in(c.Clock.on(day.y, day.m, day.d, loc))
			}
		case "monthly":
			last := daysIn(day.y, day.m)
			want := c.Day
			if want == 0 || want > last {
				want = last
			}
			if day.d == want {
				in(c.Clock.on(day.y, day.m, day.d, loc))
			}
		}
	}
	return out
}

// Escalation is one payroll escalation: Before ahead of Cutoff, due At.
type Escalation struct {
	At     time.Time
	Cutoff time.Time
	Before time.Duration
}

// Escalations returns the escalations due in (from, to], sorted by At: for
// every cut-off and every lead time in before, the instant cut-off − lead.
func Escalations(from, to time.Time, cutoffs []Cutoff, before []time.Duration, loc *time.Location) []Escalation {
	var longest time.Duration
	for _, b := range before {
		longest = max(longest, b)
	}
	var out []Escalation
	for _, c := range cutoffs {
		for _, ct := range c.Between(from, to.Add(longest), loc) {
			for _, b := range before {
				at := ct.Add(-b)
				if at.After(from) && !at.After(to) {
					out = append(out, Escalation{At: at, Cutoff: ct, Before: b})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].Cutoff.Before(out[j].Cutoff)
	})
	return out
}

// NextCutoff returns the first cut-off after t, if any within a year.
func NextCutoff(t time.Time, cutoffs []Cutoff, loc *time.Location) (time.Time, bool) {
	var best time.Time
	for _, c := range cutoffs {
		if ts := c.Between(t, t.AddDate(1, 0, 0), loc); len(ts) > 0 && (best.IsZero() || ts[0].Before(best)) {
			best = ts[0]
		}
	}
	return best, !best.IsZero()
}

type date struct {
	y int
	m time.Month
	d int
}

func civil(t time.Time) date { y, m, d := t.Date(); return date{y, m, d} }

func (d date) next() date {
	t := time.Date(d.y, d.m, d.d+1, 12, 0, 0, 0, time.UTC)
	return civil(t)
}

func (d date) after(o date) bool {
	if d.y != o.y {
		return d.y > o.y
	}
	if d.m != o.m {
		return d.m > o.m
	}
	return d.d > o.d
}

func daysIn(y int, m time.Month) int { return time.Date(y, m+1, 0, 12, 0, 0, 0, time.UTC).Day() }

func sortTimes(ts []time.Time) { sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) }) }

func dedupe(ts []time.Time) []time.Time {
	out := ts[:0]
	for i, t := range ts {
		if i == 0 || !t.Equal(ts[i-1]) {
			out = append(out, t)
		}
	}
	return out
}
