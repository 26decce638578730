// Package daily computes the daily attendance summary of one user at one
// site on one work date from that day's punches: first in, last out, worked
// minutes, late minutes, punch count and double punches. It is pure: the
// sinks read a day's punches from their punch table (attendance_events),
// call Calculator.Day, and write the result, all inside the transaction that
// inserted the new punches, so that a summary is always the function of
// every punch of its day and a replay can never count a punch twice.
//
// The rules, in order:
//
//  1. Versions: rows with the same raw id are one physical punch processed
//     under several rules versions; only the one with the highest CLEAN
//     sequence (the latest processed) counts, on its own work date: a
//     replay that moved a punch to another work date takes it out of the
//     old one (see Counted; a sink recomputes the old day too).
//  2. Order: punches sort by instant, then by raw id.
//  3. Debounce: a punch less than Rules.Debounce after the last punch kept
//     is a double punch (pressing twice, or a device that records twice),
//     whatever its direction; it is counted in DoublePunches and otherwise
//     ignored. A punch exactly Debounce after the last kept one is kept.
//  4. Worked time: "in" and "break_in" open a work interval when none is
//     open, "out" and "break_out" close the open one; "unknown" neither
//     opens nor closes. An interval still open at the end of the day counts
//     nothing. WorkedMinutes is the total in whole minutes, rounded down.
//  5. FirstIn is the first kept "in", LastOut the last kept "out".
//  6. When the transformer assigned a shift to the first "in" (its Shift is
//     set), the day's Shift and LateMinutes are that punch's: the payroll
//     rules' shift, grace and rounding decided them. Otherwise LateMinutes
//     is how far FirstIn is after the loader's own shift start (the work date
//     at Rules.ShiftStart, or the site's own start, in the time zone of the
//     first-in punch), in whole minutes rounded down, when that is more than
//     Rules.LateGrace; otherwise 0. An overnight shift works because the
//     transformer dates its punches on the day the shift started.
//  7. EarlyLeaveMinutes and OvertimeMinutes are those the transformer gave
//     the last "out", when it assigned that punch a shift; otherwise 0.
package daily

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/punchflow/punchflow/proto"
)

// Key identifies one daily_attendance row.
type Key struct {
	Site     string
	UserID   string
	WorkDate string // YYYY-MM-DD
}

// Compare orders keys by work date, site and user id, the order of
// daily_attendance's primary key.
func (k Key) Compare(o Key) int {
	return cmp.Or(strings.Compare(k.WorkDate, o.WorkDate), strings.Compare(k.Site, o.Site), strings.Compare(k.UserID, o.UserID))
}

// Punch is what a summary reads of one punch row.
type Punch struct {
	RawID      string
	CleanSeq   int64
	PersonID   string // "" when the roster did not know the user
	OccurredAt time.Time
	TimeZone   string // IANA name
	Direction  string // proto.Direction*
	// Shift, LateMinutes, EarlyLeaveMinutes and OvertimeMinutes are the
	// transformer's, "" and 0 when it assigned no shift.
	Shift             string
	LateMinutes       int
	EarlyLeaveMinutes int
	OvertimeMinutes   int
	// RulesVersion is the rules version the punch was processed under. Only
	// Summarize and Extend read it.
	RulesVersion string
}

// PunchOf is what a summary reads of a clean event loaded from CLEAN
// sequence cleanSeq.
func PunchOf(e proto.AttendanceEvent, cleanSeq int64) Punch {
	return Punch{RawID: e.Lineage.RawID, CleanSeq: cleanSeq, PersonID: e.PersonID,
		OccurredAt: e.OccurredAt.UTC(), TimeZone: e.TimeZone, Direction: e.Direction,
		Shift: e.Shift, LateMinutes: e.LateMinutes, EarlyLeaveMinutes: e.EarlyLeaveMinutes,
		OvertimeMinutes: e.OvertimeMinutes, RulesVersion: e.RulesVersion}
}

// Day is one daily_attendance row.
type Day struct {
	Key
	// PersonID is the person id of the last kept punch that has one.
	PersonID string
	// TimeZone is the zone of the first kept punch, in which LateMinutes
	// was computed.
	TimeZone string
	// FirstIn and LastOut are zero when the day has no kept "in" or "out".
	FirstIn, LastOut time.Time
	WorkedMinutes    int
	LateMinutes      int
	// EarlyLeaveMinutes and OvertimeMinutes come from the last "out"
	// (rule 7); Shift from the first "in" (rule 6), "" when unassigned.
	EarlyLeaveMinutes int
	OvertimeMinutes   int
	Shift             string
	// PunchCount is the number of punches kept after the debounce;
	// DoublePunches the number it ignored.
	PunchCount    int
	DoublePunches int
}

// Clock is a time of day.
type Clock struct{ Hour, Minute int }

// String renders c as HH:MM.
func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", c.Hour, c.Minute) }

// ParseClock parses HH:MM (24-hour).
func ParseClock(s string) (Clock, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return Clock{}, fmt.Errorf("shift start %q is not a time of day as HH:MM", s)
	}
	return Clock{Hour: t.Hour(), Minute: t.Minute()}, nil
}

// Rules are the settings of the summary. The zero value is not valid; start
// from DefaultRules.
type Rules struct {
	// Debounce is the double-punch window (rule 3). Zero keeps every punch.
	Debounce time.Duration
	// ShiftStart is when a day's shift starts unless SiteShiftStart names
	// the site.
	ShiftStart     Clock
	SiteShiftStart map[string]Clock
	// LateGrace is how late a first "in" may be without counting (rule 6).
	LateGrace time.Duration
}

// DefaultRules are a one-minute debounce, a 09:00 shift start and no grace.
func DefaultRules() Rules {
	return Rules{Debounce: time.Minute, ShiftStart: Clock{Hour: 9}}
}

// Validate checks that the durations are not negative.
func (r Rules) Validate() error {
	var errs []error
	if r.Debounce < 0 {
		errs = append(errs, fmt.Errorf("debounce %v must not be negative", r.Debounce))
	}
	if r.LateGrace < 0 {
		errs = append(errs, fmt.Errorf("late grace %v must not be negative", r.LateGrace))
	}
	return errors.Join(errs...)
}

// ParseShiftStarts parses "HH:MM" optionally followed by per-site starts,
// "09:00,hq=08:30,plant-2=22:00", into r.ShiftStart and r.SiteShiftStart.
func (r *Rules) ParseShiftStarts(s string) error {
	parts := strings.Split(s, ",")
	def, err := ParseClock(parts[0])
	if err != nil {
		return fmt.Errorf("%w (the first item is the default start, then site=HH:MM items)", err)
	}
	sites := map[string]Clock{}
	for _, p := range parts[1:] {
		site, at, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || site == "" {
			return fmt.Errorf("shift start item %q is not site=HH:MM", p)
		}
		c, err := ParseClock(at)
		if err != nil {
			return fmt.Errorf("site %s: %w", site, err)
		}
		sites[site] = c
	}
	r.ShiftStart, r.SiteShiftStart = def, sites
	return nil
}

// FormatShiftStarts is the inverse of ParseShiftStarts.
func (r Rules) FormatShiftStarts() string {
	out := []string{r.ShiftStart.String()}
	sites := make([]string, 0, len(r.SiteShiftStart))
	for s := range r.SiteShiftStart {
		sites = append(sites, s)
	}
	sort.Strings(sites)
	for _, s := range sites {
		out = append(out, s+"="+r.SiteShiftStart[s].String())
	}
	return strings.Join(out, ",")
}

// Calculator summarizes days under one set of rules. It caches the time
// zones it has loaded and is safe for concurrent use.
type Calculator struct {
	rules Rules
	mu    sync.Mutex
	zones map[string]*time.Location
}

// New returns a Calculator for r.
func New(r Rules) *Calculator {
	return &Calculator{rules: r, zones: map[string]*time.Location{}}
}

// Rules returns the calculator's rules.
func (c *Calculator) Rules() Rules { return c.rules }

// Zone loads an IANA time zone by name, from the cache after the first time.
func (c *Calculator) Zone(name string) (*time.Location, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if loc, ok := c.zones[name]; ok {
		return loc, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", name, err)
	}
	c.zones[name] = loc
	return loc, nil
}

// State is a day's summary together with what it takes to extend it with
// later punches without reading the earlier ones again (Extend).
type State struct {
	Day
	// Worked is the exact worked time; Day.WorkedMinutes is its whole
	// minutes.
	Worked time.Duration
	// LastKept is the instant of the last kept punch, from which the next
	// punch's debounce is measured; Last the latest instant of any punch,
	// kept or ignored as a double punch.
	LastKept, Last time.Time
	// OpenSince is when the open work interval started; zero when none is
	// open.
	OpenSince time.Time
	// RulesVersion is the rules version of every punch of the day, or ""
	// when they differ (a rules change or a replay under new rules).
	RulesVersion string
}

// Day summarizes the punches of day k. punches is not modified. The only
// error is a first-in punch whose time zone does not load, since that
// decides the late minutes.
func (c *Calculator) Day(k Key, punches []Punch) (Day, error) {
	s, err := c.Summarize(k, punches)
	return s.Day, err
}

// Summarize is Day with the state Extend needs. punches must be every
// punch of day k; it is not modified.
func (c *Calculator) Summarize(k Key, punches []Punch) (State, error) {
	s := State{Day: Day{Key: k}}
	if len(punches) > 0 {
		s.RulesVersion = punches[0].RulesVersion
		for _, p := range punches[1:] {
			if p.RulesVersion != s.RulesVersion {
				s.RulesVersion = ""
				break
			}
		}
	}
	ps := latestVersions(punches)
	sortPunches(ps)
	if err := c.fold(&s, ps); err != nil {
		return State{}, err
	}
	return s, nil
}

// Extend returns s extended with punches, the day's punches that s does not
// hold yet, when the result is certain to equal Summarize over all of the
// day's punches: every new punch sorts after every punch s holds, and all
// share s's rules version (so that none is another version of a punch s
// holds). Otherwise it returns false, and the caller must Summarize from
// every punch of the day. punches is not modified.
func (c *Calculator) Extend(s State, punches []Punch) (State, bool, error) {
	if s.RulesVersion == "" {
		return State{}, false, nil
	}
	for _, p := range punches {
		if p.RulesVersion != s.RulesVersion || !p.OccurredAt.After(s.Last) {
			return State{}, false, nil
		}
	}
	ps := punches
	if len(ps) > 1 {
		ps = slices.Clone(punches)
		sortPunches(ps)
	}
	if err := c.fold(&s, ps); err != nil {
		return State{}, false, err
	}
	return s, true, nil
}

// sortPunches sorts by instant, then raw id (rule 2).
func sortPunches(ps []Punch) {
	slices.SortFunc(ps, func(a, b Punch) int {
		return cmp.Or(a.OccurredAt.Compare(b.OccurredAt), strings.Compare(a.RawID, b.RawID))
	})
}

// fold applies rules 3 to 7 to ps, sorted, on top of s.
func (c *Calculator) fold(s *State, ps []Punch) error {
	for i := range ps {
		p := &ps[i]
		if p.OccurredAt.After(s.Last) {
			s.Last = p.OccurredAt
		}
		if s.PunchCount > 0 && p.OccurredAt.Sub(s.LastKept) < c.rules.Debounce {
			s.DoublePunches++
			continue
		}
		if s.PunchCount == 0 {
			s.TimeZone = p.TimeZone
		}
		s.PunchCount++
		s.LastKept = p.OccurredAt
		if p.PersonID != "" {
			s.PersonID = p.PersonID
		}
		switch p.Direction {
		case proto.DirectionIn, proto.DirectionBreakIn:
			if s.OpenSince.IsZero() {
				s.OpenSince = p.OccurredAt
			}
		case proto.DirectionOut, proto.DirectionBreakOut:
			if !s.OpenSince.IsZero() {
				s.Worked += p.OccurredAt.Sub(s.OpenSince)
				s.OpenSince = time.Time{}
			}
		}
		switch p.Direction {
		case proto.DirectionIn:
			if s.FirstIn.IsZero() {
				s.FirstIn = p.OccurredAt
				if p.Shift != "" {
					s.Shift, s.LateMinutes = p.Shift, p.LateMinutes
				} else {
					late, err := c.late(s.Key, p)
					if err != nil {
						return fmt.Errorf("day %s/%s/%s: %w", s.Site, s.UserID, s.WorkDate, err)
					}
					s.LateMinutes = late
				}
			}
		case proto.DirectionOut:
			s.LastOut = p.OccurredAt
			s.EarlyLeaveMinutes, s.OvertimeMinutes = 0, 0
			if p.Shift != "" {
				s.EarlyLeaveMinutes, s.OvertimeMinutes = p.EarlyLeaveMinutes, p.OvertimeMinutes
			}
		}
	}
	s.WorkedMinutes = int(s.Worked / time.Minute)
	return nil
}

func (c *Calculator) late(k Key, firstIn *Punch) (int, error) {
	loc, err := c.Zone(firstIn.TimeZone)
	if err != nil {
		return 0, err
	}
	date, err := time.Parse(time.DateOnly, k.WorkDate)
	if err != nil {
		return 0, fmt.Errorf("work date %q is not YYYY-MM-DD", k.WorkDate)
	}
	start := c.rules.ShiftStart
	if s, ok := c.rules.SiteShiftStart[k.Site]; ok {
		start = s
	}
	startAt := time.Date(date.Year(), date.Month(), date.Day(), start.Hour, start.Minute, 0, 0, loc)
	late := firstIn.OccurredAt.Sub(startAt)
	if late <= c.rules.LateGrace {
		return 0, nil
	}
	return int(late / time.Minute), nil
}

// latestVersions returns a copy of punches with, for each raw id, only the
// punch of the highest CLEAN sequence (two rows cannot share a sequence;
// the instant and the direction make the choice deterministic anyway).
func latestVersions(punches []Punch) []Punch {
	out := make([]Punch, 0, len(punches))
	// A day holds a few punches: below a few dozen, looking through out
	// beats building a map.
	var at map[string]int
	if len(punches) > 32 {
		at = make(map[string]int, len(punches))
	}
	for _, p := range punches {
		i, seen := at[p.RawID]
		if at == nil {
			i = slices.IndexFunc(out, func(q Punch) bool { return q.RawID == p.RawID })
			seen = i >= 0
		}
		switch {
		case !seen:
			if at != nil {
				at[p.RawID] = len(out)
			}
			out = append(out, p)
		case newer(p, out[i]):
			out[i] = p
		}
	}
	return out
}

// newer reports whether p is a later version of the punch q is (rule 1):
// a higher CLEAN sequence, then a later instant, then the greater
// direction, so that the choice is deterministic.
func newer(p, q Punch) bool {
	return cmp.Or(cmp.Compare(p.CleanSeq, q.CleanSeq), p.OccurredAt.Compare(q.OccurredAt),
		strings.Compare(p.Direction, q.Direction)) > 0
}

// Counted returns the punches that count (rule 1) across days: of every
// raw id only the version with the highest CLEAN sequence (then instant,
// then direction, as within a day), on its own day. Days left without a
// punch are dropped; a summary has no row for them. punches is not
// modified.
func Counted(punches map[Key][]Punch) map[Key][]Punch {
	type at struct {
		key Key
		i   int
	}
	latest := map[string]at{}
	for k, ps := range punches {
		for i, p := range ps {
			cur, ok := latest[p.RawID]
			if !ok {
				latest[p.RawID] = at{k, i}
				continue
			}
			if newer(p, punches[cur.key][cur.i]) {
				latest[p.RawID] = at{k, i}
			}
		}
	}
	out := make(map[Key][]Punch, len(punches))
	for _, a := range latest {
		out[a.key] = append(out[a.key], punches[a.key][a.i])
	}
	return out
}

// Days summarizes every day in punches and returns the days sorted by key.
func (c *Calculator) Days(punches map[Key][]Punch) ([]Day, error) {
	keys := make([]Key, 0, len(punches))
	for k := range punches {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, Key.Compare)
	out := make([]Day, 0, len(keys))
	for _, k := range keys {
		d, err := c.Day(k, punches[k])
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// SortedKeys returns the distinct keys of keys, sorted.
func SortedKeys(keys []Key) []Key {
	out := slices.Clone(keys)
	slices.SortFunc(out, Key.Compare)
	return slices.Compact(out)
}
