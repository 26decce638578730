package daily

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/proto"
)

// at is a UTC instant on 2024-03-01; the tests' zone is Asia/Singapore
// (UTC+8, no daylight saving), so at(1, 0) is 09:00 local.
func at(hour, min int, sec ...int) time.Time {
	s := 0
	if len(sec) > 0 {
		s = sec[0]
	}
	return time.Date(2024, 3, 1, hour, min, s, 0, time.UTC)
}

func punch(id string, t time.Time, dir string) Punch {
	return Punch{RawID: "raw-" + id, CleanSeq: 1, OccurredAt: t, TimeZone: "Asia/Singapore", Direction: dir}
}

var key = Key{Site: "hq", UserID: "7", WorkDate: "2024-03-01"}

func TestDay(t *testing.T) {
	const (
		in, out, bo, bi, unk = proto.DirectionIn, proto.DirectionOut, proto.DirectionBreakOut, proto.DirectionBreakIn, proto.DirectionUnknown
	)
	rules := DefaultRules() // 1m debounce, 09:00 start, no grace
	withPerson := func(p Punch, person string) Punch { p.PersonID = person; return p }
	version := func(p Punch, raw string, seq int64) Punch { p.RawID, p.CleanSeq = raw, seq; return p }
	shifted := func(p Punch, shift string, late, early, overtime int) Punch {
		p.Shift, p.LateMinutes, p.EarlyLeaveMinutes, p.OvertimeMinutes = shift, late, early, overtime
		return p
	}
	tests := []struct {
		name    string
		rules   *Rules // nil: DefaultRules
		key     Key
		punches []Punch
		want    Day
	}{
		{
			name:    "in and out on time",
			punches: []Punch{punch("a", at(0, 55), in), punch("b", at(9, 5), out)},
			want: Day{TimeZone: "Asia/Singapore", FirstIn: at(0, 55), LastOut: at(9, 5),
				WorkedMinutes: 8*60 + 10, PunchCount: 2},
		},
		{
			name:    "order of the input does not matter",
			punches: []Punch{punch("b", at(9, 5), out), punch("a", at(0, 55), in)},
			want: Day{TimeZone: "Asia/Singapore", FirstIn: at(0, 55), LastOut: at(9, 5),
				WorkedMinutes: 8*60 + 10, PunchCount: 2},
		},
		{
			name:    "late by 17 minutes and a half",
			punches: []Punch{punch("a", at(1, 17, 30), in), punch("b", at(9, 0), out)},
			want: Day{TimeZone: "Asia/Singapore", FirstIn: at(1, 17, 30), LastOut: at(9, 0),
				WorkedMinutes: 7*60 + 42, LateMinutes: 17, PunchCount: 2},
		},
		{
			name:    "late within the grace",
			rules:   &Rules{Debounce: time.Minute, ShiftStart: Clock{9, 0}, LateGrace: 5 * time.Minute},
			punches: []Punch{punch("a", at(1, 5), in)},
			want:    Day{TimeZone: "Asia/Singapore", FirstIn: at(1, 5), PunchCount: 1},
		},
		{
			name:    "late past the grace counts from the shift start",
			rules:   &Rules{Debounce: time.Minute, ShiftStart: Clock{9, 0}, LateGrace: 5 * time.Minute},
			punches: []Punch{punch("a", at(1, 6), in)},
			want:    Day{TimeZone: "Asia/Singapore", FirstIn: at(1, 6), LateMinutes: 6, PunchCount: 1},
		},
		{
			name:    "site shift start",
			rules:   &Rules{Debounce: time.Minute, ShiftStart: Clock{9, 0}, SiteShiftStart: map[string]Clock{"hq": {8, 0}}},
			punches: []Punch{punch("a", at(0, 30), in)},
			want:    Day{TimeZone: "Asia/Singapore", FirstIn: at(0, 30), LateMinutes: 30, PunchCount: 1},
		},
		{
			name:  "overnight shift dated on its first day",
			rules: &Rules{ShiftStart: Clock{22, 0}},
			// 22:10 local on 1 March, out 06:00 local on 2 March.
			punches: []Punch{punch("a", at(14, 10), in), punch("b", at(22, 0), out)},
			want: Day{TimeZone: "Asia/Singapore", FirstIn: at(14, 10), LastOut: at(22, 0),
				WorkedMinutes: 7*60 + 50, LateMinutes: 10, PunchCount: 2},
		},
		{
			name: "double punch within the window is ignored",
			punches: []Punch{
				punch("a", at(0, 50), in), punch("a2", at(0, 50, 40), in),
				punch("b", at(9, 0), out), punch("b2", at(9, 0, 59), out),
			},
			want: Day{TimeZone: "Asia/Singapore", FirstIn: at(0, 50), LastOut: at(9, 0),
				WorkedMinutes: 8*60 + 10, PunchCount: 2, DoublePunches: 2},
		},
		{
			name:    "a punch exactly one window later is kept",
			punches: []Punch{punch("a", at(0, 50), in), punch("b", at(0, 51), out)},
			want: Day{TimeZone: "Asia/Singapore", FirstIn: at(0, 50), LastOut: at(0, 51),
				WorkedMinutes: 1, PunchCount: 2},
		},
		{
			name: "the window runs from the last kept punch, not the last punch",
			punches: []Punch{
				punch("a", at(0, 50), in), punch("b", at(0, 50, 40), in), punch("c", at(0, 51, 20), out),
			},
			want: Day{TimeZone: "Asia/Singapore", FirstIn: at(0, 50), LastOut: at(0, 51, 20),
				WorkedMinutes: 1, PunchCount: 2, DoublePunches: 1},
		},
		{
			name:    "zero debounce keeps punches at the same instant",
			rules:   &Rules{ShiftStart: Clock{9, 0}},
			punches: []Punch{punch("a", at(0, 50), in), punch("b", at(0, 50), in)},
			want:    Day{TimeZone: "Asia/Singapore", FirstIn: at(0, 50), PunchCount: 2},
		},
		{
			name: "breaks are not worked",
			punches: []Punch{
				punch("a", at(1, 0), in), punch("b", at(4, 0), bo), punch("c", at(5, 0), bi), punch("d", at(9, 0), out),
			},
			want: Day{TimeZone: "Asia/Singapore", FirstIn: at(1, 0), LastOut: at(9, 0),
				WorkedMinutes: 7 * 60, PunchCount: 4},
		},
		{
			name: "unknown directions count but do not pair",
			punches: []Punch{
				punch("a", at(1, 0), in), punch("b", at(3, 0), unk), punch("c", at(9, 0), out),
			},
			want: Day{TimeZone: "Asia/Singapore", FirstIn: at(1, 0), LastOut: at(9, 0),
				WorkedMinutes: 8 * 60, PunchCount: 3},
		},
		{
			name: "a second in while working and an out while not working change nothing",
			punches: []Punch{
				punch("a", at(0, 30), out), punch("b", at(1, 0), in), punch("c", at(2, 0), in), punch("d", at(5, 0), out), punch("e", at(6, 0), out),
			},
			want: Day{TimeZone: "Asia/Singapore", FirstIn: at(1, 0), LastOut: at(6, 0),
				WorkedMinutes: 4 * 60, PunchCount: 5},
		},
		{
			name:    "an interval left open counts nothing",
			punches: []Punch{punch("a", at(1, 0), in)},
			want:    Day{TimeZone: "Asia/Singapore", FirstIn: at(1, 0), PunchCount: 1},
		},
		{
			name:    "only an out: no first in, no lateness",
			punches: []Punch{punch("a", at(9, 0), out)},
			want:    Day{TimeZone: "Asia/Singapore", LastOut: at(9, 0), PunchCount: 1},
		},
		{
			name: "several pairs",
			punches: []Punch{
				punch("a", at(1, 0), in), punch("b", at(2, 0, 30), out), punch("c", at(3, 0), in), punch("d", at(4, 0), out),
			},
			want: Day{TimeZone: "Asia/Singapore", FirstIn: at(1, 0), LastOut: at(4, 0),
				WorkedMinutes: 120, PunchCount: 4},
		},
		{
			name: "the last person id wins",
			punches: []Punch{
				withPerson(punch("a", at(1, 0), in), "p-1"), punch("b", at(5, 0), unk), withPerson(punch("c", at(9, 0), out), "p-2"),
			},
			want: Day{PersonID: "p-2", TimeZone: "Asia/Singapore", FirstIn: at(1, 0), LastOut: at(9, 0),
				WorkedMinutes: 8 * 60, PunchCount: 3},
		},
		{
			name: "the transformer's shift decides late, early leave and overtime",
			punches: []Punch{
				shifted(punch("a", at(1, 17), in), "day", 12, 0, 0),
				shifted(punch("b", at(8, 30), out), "day", 0, 30, 0),
			},
			want: Day{TimeZone: "Asia/Singapore", FirstIn: at(1, 17), LastOut: at(8, 30), Shift: "day",
				WorkedMinutes: 7*60 + 13, LateMinutes: 12, EarlyLeaveMinutes: 30, PunchCount: 2},
		},
		{
			name: "overtime of the last out; an earlier out's early leave does not count",
			punches: []Punch{
				shifted(punch("a", at(1, 0), in), "day", 0, 0, 0),
				shifted(punch("b", at(4, 0), out), "day", 0, 300, 0),
				shifted(punch("c", at(5, 0), in), "day", 0, 0, 0),
				shifted(punch("d", at(10, 45), out), "day", 0, 0, 45),
			},
			want: Day{TimeZone: "Asia/Singapore", FirstIn: at(1, 0), LastOut: at(10, 45), Shift: "day",
				WorkedMinutes: 3*60 + 5*60 + 45, OvertimeMinutes: 45, PunchCount: 4},
		},
		{
			name: "no shift on the first in: the loader's own start decides",
			punches: []Punch{
				punch("a", at(1, 20), in),
				shifted(punch("b", at(9, 0), out), "day", 0, 0, 20),
			},
			want: Day{TimeZone: "Asia/Singapore", FirstIn: at(1, 20), LastOut: at(9, 0),
				WorkedMinutes: 7*60 + 40, LateMinutes: 20, OvertimeMinutes: 20, PunchCount: 2},
		},
		{
			name: "one raw punch under two rules versions counts once, the latest",
			punches: []Punch{
				version(punch("old", at(1, 0), in), "raw-1", 10),
				version(punch("new", at(1, 0), unk), "raw-1", 20),
				punch("b", at(9, 0), out),
			},
			want: Day{TimeZone: "Asia/Singapore", LastOut: at(9, 0), PunchCount: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rules
			if tt.rules != nil {
				r = *tt.rules
			}
			k := key
			if tt.key != (Key{}) {
				k = tt.key
			}
			in := append([]Punch(nil), tt.punches...)
			got, err := New(r).Day(k, tt.punches)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Key = k
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Day (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(in, tt.punches); diff != "" {
				t.Errorf("Day changed its input (-before +after):\n%s", diff)
			}
		})
	}
}

func TestDayZoneAndDateErrors(t *testing.T) {
	c := New(DefaultRules())
	p := punch("a", at(1, 0), proto.DirectionIn)
	p.TimeZone = "Mars/Olympus_Mons"
	if _, err := c.Day(key, []Punch{p}); err == nil || !strings.Contains(err.Error(), "Mars/Olympus_Mons") {
		t.Errorf("Day with an unknown zone: err = %v, want it to name the zone", err)
	}
	if _, err := c.Day(Key{Site: "hq", UserID: "7", WorkDate: "March 1st"}, []Punch{punch("a", at(1, 0), proto.DirectionIn)}); err == nil {
		t.Error("Day with a bad work date returned nil")
	}
	// Without a first in, neither matters.
	p.Direction = proto.DirectionOut
	if _, err := c.Day(key, []Punch{p}); err != nil {
		t.Errorf("Day without a first in: %v", err)
	}
}

func TestDaysSortedAndIncremental(t *testing.T) {
	c := New(DefaultRules())
	// A day summarized from its punches in any split gives the same row as
	// from all at once: the sinks rely on this when they recompute a day.
	all := map[Key][]Punch{}
	for u := range 3 {
		for i := range 4 {
			k := Key{Site: "hq", UserID: fmt.Sprint(9 - u), WorkDate: "2024-03-01"}
			all[k] = append(all[k], punch(fmt.Sprintf("u%d-%d", u, i), at(1+2*i, u*7), []string{proto.DirectionIn, proto.DirectionOut}[i%2]))
		}
	}
	days, err := c.Days(all)
	if err != nil {
		t.Fatal(err)
	}
	var keys []Key
	for _, d := range days {
		keys = append(keys, d.Key)
	}
	if want := SortedKeys(keys); !cmp.Equal(want, keys) {
		t.Errorf("Days not sorted: %v", keys)
	}
	if len(days) != 3 {
		t.Fatalf("Days returned %d days, want 3", len(days))
	}
	for _, d := range days {
		if d.PunchCount != 4 || d.WorkedMinutes != 4*60 {
			t.Errorf("day %v = %+v, want 4 punches and 240 worked minutes", d.Key, d)
		}
	}
}

// TestCounted keeps, of every raw id, the version with the highest CLEAN
// sequence, on its own day: a replay that moved a punch to the next work
// date takes it out of the first, and a day left empty has no summary.
func TestCounted(t *testing.T) {
	next := Key{Site: key.Site, UserID: key.UserID, WorkDate: "2024-03-02"}
	version := func(p Punch, seq int64, rules string) Punch {
		p.CleanSeq, p.RulesVersion = seq, rules
		return p
	}
	in, out := punch("in", at(1, 0), proto.DirectionIn), punch("out", at(9, 0), proto.DirectionOut)
	late := punch("late", at(16, 30), proto.DirectionIn) // 00:30 local the next day
	other := Key{Site: "hq", UserID: "8", WorkDate: "2024-03-01"}
	punches := map[Key][]Punch{
		// Under rules v1 the late punch belonged to the first day; the
		// replay under v2 moved it to the next.
		key:  {version(in, 1, "v1"), version(out, 2, "v1"), version(late, 3, "v1")},
		next: {version(late, 10, "v2")},
		// A day whose only punch moved away, and an older version replayed
		// after a newer one (the higher sequence wins either way).
		other: {version(punch("x", at(2, 0), proto.DirectionIn), 4, "v1")},
		{Site: "hq", UserID: "8", WorkDate: "2024-03-02"}: {version(punch("x", at(2, 0), proto.DirectionIn), 11, "v2")},
		{Site: "hq", UserID: "9", WorkDate: "2024-03-01"}: {version(punch("y", at(3, 0), proto.DirectionIn), 12, "v1")},
		{Site: "hq", UserID: "9", WorkDate: "2024-03-02"}: {version(punch("y", at(3, 0), proto.DirectionIn), 5, "v2")},
	}
	got := Counted(punches)
	want := map[Key][]Punch{
		key:  {version(in, 1, "v1"), version(out, 2, "v1")},
		next: {version(late, 10, "v2")},
		{Site: "hq", UserID: "8", WorkDate: "2024-03-02"}: {version(punch("x", at(2, 0), proto.DirectionIn), 11, "v2")},
		{Site: "hq", UserID: "9", WorkDate: "2024-03-01"}: {version(punch("y", at(3, 0), proto.DirectionIn), 12, "v1")},
	}
	for k := range got {
		slices.SortFunc(got[k], func(a, b Punch) int { return strings.Compare(a.RawID, b.RawID) })
		slices.SortFunc(want[k], func(a, b Punch) int { return strings.Compare(a.RawID, b.RawID) })
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Counted (-want +got):\n%s", diff)
	}
	if len(punches[key]) != 3 {
		t.Error("Counted modified its input")
	}
}

func TestParseShiftStarts(t *testing.T) {
	tests := []struct {
		in      string
		want    Rules
		wantErr string
	}{
		{in: "09:00", want: Rules{ShiftStart: Clock{9, 0}, SiteShiftStart: map[string]Clock{}}},
		{in: "08:30, hq=07:45,plant-2=22:00", want: Rules{ShiftStart: Clock{8, 30}, SiteShiftStart: map[string]Clock{"hq": {7, 45}, "plant-2": {22, 0}}}},
		{in: "9am", wantErr: "HH:MM"},
		{in: "09:00,hq", wantErr: "site=HH:MM"},
		{in: "09:00,hq=25:00", wantErr: "site hq"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var r Rules
			err := r.ParseShiftStarts(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseShiftStarts(%q) = %v, want an error mentioning %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, r); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			var back Rules
			if err := back.ParseShiftStarts(r.FormatShiftStarts()); err != nil || !cmp.Equal(back, r) {
				t.Errorf("FormatShiftStarts does not round-trip: %q -> %+v, %v", r.FormatShiftStarts(), back, err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultRules().Validate(); err != nil {
		t.Errorf("DefaultRules: %v", err)
	}
	if err := (Rules{Debounce: -time.Second, LateGrace: -time.Second}).Validate(); err == nil {
		t.Error("negative durations accepted")
	}
}

// TestExtendEqualsSummarize splits random days into a first part, summarized,
// and the rest, added with Extend: whenever Extend accepts, the result must
// equal Summarize over every punch; it must accept whenever the rest comes
// strictly later under the same rules version; and it must refuse a punch
// that is not later, or of another rules version.
func TestExtendEqualsSummarize(t *testing.T) {
	dirs := []string{proto.DirectionIn, proto.DirectionOut, proto.DirectionBreakOut, proto.DirectionBreakIn, proto.DirectionUnknown}
	rules := DefaultRules()
	rules.LateGrace = 2 * time.Minute
	c := New(rules)
	rng := rand.New(rand.NewPCG(1, 2))
	accepted, refused := 0, 0
	for trial := range 3000 {
		n := 1 + rng.IntN(9)
		ps := make([]Punch, n)
		for i := range ps {
			// Minutes apart or seconds apart (double punches), some at
			// the same instant.
			p := punch(fmt.Sprintf("%d-%d", trial, i), at(0, 0).Add(time.Duration(rng.IntN(600))*time.Minute/10), dirs[rng.IntN(len(dirs))])
			p.RulesVersion = "v1"
			if rng.IntN(10) == 0 {
				p.RulesVersion = "v2"
			}
			if rng.IntN(3) == 0 {
				p.PersonID = fmt.Sprint("person-", rng.IntN(3))
			}
			if rng.IntN(4) == 0 {
				p.Shift, p.LateMinutes, p.EarlyLeaveMinutes, p.OvertimeMinutes = "day", rng.IntN(30), rng.IntN(30), rng.IntN(30)
			}
			ps[i] = p
		}
		cut := rng.IntN(n + 1)
		if rng.IntN(2) == 0 {
			// The common case: the rest comes later.
			slices.SortFunc(ps, func(a, b Punch) int { return a.OccurredAt.Compare(b.OccurredAt) })
		}
		want, err := c.Summarize(key, ps)
		if err != nil {
			t.Fatal(err)
		}
		first, err := c.Summarize(key, ps[:cut])
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := c.Extend(first, ps[cut:])
		if err != nil {
			t.Fatal(err)
		}
		later := first.RulesVersion != ""
		for _, p := range ps[cut:] {
			later = later && p.RulesVersion == first.RulesVersion && p.OccurredAt.After(first.Last)
		}
		if cut == 0 {
			later = false // nothing to extend: an empty state has no version
		}
		switch {
		case ok != later:
			t.Fatalf("trial %d: Extend accepted = %v, want %v\nfirst %+v\nrest %+v", trial, ok, later, first, ps[cut:])
		case ok && !cmp.Equal(want, got):
			t.Fatalf("trial %d: Extend differs from Summarize (-summarize +extend):\n%s", trial, cmp.Diff(want, got))
		case ok:
			accepted++
		default:
			refused++
		}
	}
	if accepted < 500 || refused < 500 {
		t.Errorf("accepted %d and refused %d splits; the generator should exercise both", accepted, refused)
	}
}
