package rules

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/punchflow/punchflow/services/transformer/internal/roster"
)

// Summary describes the rules in a few lines per section, for `rules check`.
func (r *Rules) Summary() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("rules version %s", r.Version)
	if r.DefaultZone != nil {
		line("default time zone: %s (for sites not listed)", r.DefaultZone)
	} else {
		line("default time zone: none (punches of sites not listed are rejected)")
	}
	line("clock: reject device times before %d or more than %v after collection; %s", r.EarliestYear, r.MaxFuture,
		map[bool]string{true: "correct clocks measured more than " + r.ClockCorrectAbove.String() + " off", false: "never correct measured clock offsets"}[r.ClockCorrectAbove > 0])

	line("sites (%d):", len(r.Sites))
	for _, name := range sortedKeys(r.Sites) {
		s := r.Sites[name]
		var weekend []string
		for d := time.Sunday; d <= time.Saturday; d++ {
			if s.Weekend[d] {
				weekend = append(weekend, strings.ToLower(d.String()[:3]))
			}
		}
		hol := "no holidays"
		if s.Holidays != nil {
			hol = fmt.Sprintf("holidays %s (%d days)", strings.Join(s.Calendars, ","), s.Holidays.Len())
		}
		line("  %-12s %-20s weekend %-8s %s, default shift %s", name, s.ZoneName, strings.Join(weekend, ","), hol, orNone(s.Shift))
	}

	line("shifts (%d):", len(r.Shifts))
	for _, name := range sortedKeys(r.Shifts) {
		s := r.Shifts[name]
		kind := ""
		if s.Overnight() {
			kind = " overnight"
		}
		days := "site working days"
		if s.Days != nil {
			var d []string
			for w := time.Sunday; w <= time.Saturday; w++ {
				if s.Days[w] {
					d = append(d, strings.ToLower(w.String()[:3]))
				}
			}
			days = strings.Join(d, ",")
		}
		var breaks []string
		for _, br := range s.Breaks {
			breaks = append(breaks, fmt.Sprintf("%s %s-%s", br.Name, formatClock(br.Start), formatClock(br.End)))
		}
		line("  %-12s %s-%s%s on %s; grace late %v, early leave %v; punches from %s to %s; overtime from %v after end; breaks: %s; rounding: in %s, out %s",
			name, formatClock(s.Start), formatClock(s.End), kind, days, sec(s.LateGrace), sec(s.EarlyLeaveGrace),
			formatClock(s.Start-s.EarliestPunch), formatClock(s.End+s.LatestPunch), sec(s.OvertimeMin),
			orNone(strings.Join(breaks, ", ")), s.Rounding.In, s.Rounding.Out)
	}
	a := r.Assignments
	line("assignments: default shift %s; %d department(s), %d person(s) assigned", orNone(a.Default), len(a.Departments), len(a.Persons))

	line("holiday calendars (%d):", len(r.Calendars))
	for _, name := range sortedKeys(r.Calendars) {
		line("  %-12s %d day(s)", name, r.Calendars[name].Len())
	}
	line("state codes: %s", states(r.defaultStates))
	for _, name := range sortedKeys(r.Models) {
		m := r.Models[name]
		line("  model %s (serial prefixes %s): %s", name, orNone(strings.Join(m.SerialPrefixes, ",")), states(m.states))
	}
	if len(r.Devices) > 0 {
		line("devices (%d):", len(r.Devices))
		for _, serial := range sortedKeys(r.Devices) {
			d := r.Devices[serial]
			model := "-"
			if d.Model != nil {
				model = d.Model.Name
			}
			line("  %-16s model %s, clock zone %s", serial, model, orNone(d.ZoneName))
		}
	}
	line("record sources (%d):", len(r.Records))
	for _, src := range sortedKeys(r.Records) {
		m := r.Records[src]
		key := "the source's own"
		if len(m.NaturalKey) > 0 {
			key = strings.Join(m.NaturalKey, "|")
		}
		required := 0
		for _, f := range m.Fields {
			if f.Required {
				required++
			}
		}
		line("  %-12s %d field(s), %d required; natural key %s; timestamp %s", src, len(m.Fields), required, key, orNone(m.Timestamp))
	}
	return b.String()
}

// CheckRoster reports roster entries the rules cannot honour: a shift the
// rules do not have, or a site with no time zone.
func (r *Rules) CheckRoster(ros *roster.Roster) []error {
	var errs []error
	for _, e := range ros.Entries() {
		if e.Shift != "" && r.Shifts[e.Shift] == nil {
			errs = append(errs, fmt.Errorf("roster: site %q user %q (%s) names shift %q, which the rules do not have", e.Site, e.UserID, e.PersonID, e.Shift))
		}
		if r.Sites[e.Site] == nil && r.DefaultZone == nil {
			errs = append(errs, fmt.Errorf("roster: site %q of user %q is not in the rules and there is no default_time_zone", e.Site, e.UserID))
		}
	}
	return errs
}

func (rr RoundRule) String() string {
	if rr.Unit == 0 {
		return "none"
	}
	return fmt.Sprintf("%s to %v", rr.Mode, sec(rr.Unit))
}

func states(m [256]string) string {
	codes := make([]int, 0, 8)
	for c, d := range m {
		if d != "" {
			codes = append(codes, c)
		}
	}
	sort.Ints(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%d %s", c, m[c])
	}
	return strings.Join(parts, ", ") + "; other codes by the shift window (flag unknown_state)"
}

func sec(s int64) time.Duration { return time.Duration(s) * time.Second }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
