package rules

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/transformer/internal/roster"
)

// payrollRules exercises every part of the rules file. 2026-01-14 is a
// Wednesday; hq runs on New York time (EST, UTC-5 in January), plant on
// India time (UTC+5:30, no daylight saving).
const payrollRules = `
default_time_zone: UTC
earliest_year: 2010
max_future: 2h
clock:
  correct_above: 30s
holidays:
  us:
    2026-07-03: Independence Day (observed)
    12-25: Christmas
  in:
    2026-01-26: Republic Day
sites:
  hq:
    time_zone: America/New_York
    holidays: [us]
    shift: day
  plant:
    time_zone: Asia/Kolkata
    holidays: [in]
    weekend: [sunday]
    shift: night
  dubai:
    time_zone: Asia/Dubai
    weekend: [friday, saturday]
models:
  speedface:
    serial_prefixes: [SF]
    states: {"0": auto, "1": auto}
  legacy:
    states: {"2": out}
devices:
  OLD-1: {model: legacy}
  BER-1: {time_zone: Europe/Berlin}
shifts:
  day:
    start: "09:00"
    end: "17:00"
    late_grace: 5m
    early_leave_grace: 5m
    earliest_punch: 2h
    latest_punch: 4h
    overtime_min: 30m
    breaks:
      - {name: lunch, start: "12:00", end: "12:30"}
  night:
    start: "22:00"
    end: "06:00"
    late_grace: 10m
    breaks:
      - {name: meal, start: "02:00", end: "02:30"}
    rounding:
      in: {unit: 15m, mode: up}
      out: {unit: 15m, mode: down}
  weekend_crew:
    start: "08:00"
    end: "16:00"
    days: [saturday, sunday]
  allweek_night:
    start: "22:00"
    end: "06:00"
    days: [mon, tue, wed, thu, fri, sat, sun]
assignments:
  default_shift: day
  departments:
    warehouse: night
  persons:
    emp-9: weekend_crew
`

func testRoster(t testing.TB) *roster.Roster {
	t.Helper()
	ros, err := roster.New([]roster.Entry{
		{Site: "hq", UserID: "0042", PersonID: "emp-1", Name: "Ada", Department: "office"},
		{Site: "hq", UserID: "0043", PersonID: "emp-2", Name: "Bo", Department: "warehouse"},
		{Site: "hq", UserID: "0044", PersonID: "emp-9", Name: "Cy"},
		{Site: "hq", UserID: "0045", PersonID: "emp-5", Name: "Di", Shift: "night"},
		{Site: "hq", UserID: "0046", PersonID: "emp-6", Name: "Ed", Shift: "ghost"},
		{Site: "hq", UserID: "0047", PersonID: "emp-11", Name: "Ia", Shift: "allweek_night"},
		{Site: "plant", UserID: "7", PersonID: "emp-7", Name: "Fa"},
		{Site: "dubai", UserID: "8", PersonID: "emp-8", Name: "Gu"},
		{Site: "mars", UserID: "1", PersonID: "emp-10", Name: "Hu"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ros
}

// pu builds a raw punch; collected a day after the device time unless
// changed, so that the future check passes.
func pu(site, serial, user, devTime string, state int, opts ...func(*proto.RawPunch)) proto.RawPunch {
	wall, err := proto.ParseLocalTime(devTime)
	if err != nil {
		panic(err)
	}
	p := proto.RawPunch{
		Source: "zk:" + serial, SourceKind: "zk_tcp", Site: site, DeviceSerial: serial, UserID: user,
		DeviceTime: devTime, State: state, VerifyMode: 1, RunID: "run-1",
		CollectedAt: wall.Add(36 * time.Hour),
	}
	for _, o := range opts {
		o(&p)
	}
	return proto.NewRawPunch(p)
}

func offset(ms int64) func(*proto.RawPunch) {
	return func(p *proto.RawPunch) { p.ClockOffsetMS = &ms }
}

func collected(s string) func(*proto.RawPunch) {
	return func(p *proto.RawPunch) {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		p.CollectedAt = t
	}
}

func deviceZone(z string) func(*proto.RawPunch) {
	return func(p *proto.RawPunch) { p.DeviceTimeZone = z }
}

// outcome is the part of an event the table compares.
type outcome struct {
	At, Dir, Date, Shift, Person, Zone string
	Late, Early, Overtime              int
	Rounded, ShiftStart, ShiftEnd      string
	ClockOffsetMS                      int64
	Flags                              []string
}

func outcomeOf(ev proto.AttendanceEvent) outcome {
	f := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.Format(time.RFC3339)
	}
	flags := slices.Clone(ev.Flags)
	slices.Sort(flags)
	return outcome{
		At: ev.OccurredAt.Format(time.RFC3339), Dir: ev.Direction, Date: ev.WorkDate, Shift: ev.Shift, Person: ev.PersonID, Zone: ev.TimeZone,
		Late: ev.LateMinutes, Early: ev.EarlyLeaveMinutes, Overtime: ev.OvertimeMinutes,
		Rounded: f(ev.RoundedAt), ShiftStart: f(ev.ShiftStart), ShiftEnd: f(ev.ShiftEnd),
		ClockOffsetMS: ev.ClockOffsetMS, Flags: flags,
	}
}

func TestApplyPayroll(t *testing.T) {
	r := mustParse(t, payrollRules)
	ros := testRoster(t)
	const ny, kol = "America/New_York", "Asia/Kolkata"
	day := func(date string) (string, string) { // hq day shift instants on a January date (EST)
		return date + "T14:00:00Z", date + "T22:00:00Z"
	}
	ds, de := day("2026-01-14")
	tests := []struct {
		name string
		p    proto.RawPunch
		ros  *roster.Roster
		want outcome
	}{
		// The day shift: grace, late, early leave, overtime, breaks.
		{name: "on time", p: pu("hq", "D1", "0042", "2026-01-14T08:58:00", 0),
			want: outcome{At: "2026-01-14T13:58:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de}},
		{name: "late within grace", p: pu("hq", "D1", "0042", "2026-01-14T09:04:59", 0),
			want: outcome{At: "2026-01-14T14:04:59Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de}},
		{name: "late beyond grace counts from the start", p: pu("hq", "D1", "0042", "2026-01-14T09:07:30", 0),
			want: outcome{At: "2026-01-14T14:07:30Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de, Late: 7, Flags: []string{FlagLate}}},
		{name: "early leave", p: pu("hq", "D1", "0042", "2026-01-14T16:50:00", 1),
			want: outcome{At: "2026-01-14T21:50:00Z", Dir: "out", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de, Early: 10, Flags: []string{FlagEarlyLeave}}},
		{name: "early leave within grace", p: pu("hq", "D1", "0042", "2026-01-14T16:56:00", 1),
			want: outcome{At: "2026-01-14T21:56:00Z", Dir: "out", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de}},
		{name: "overtime", p: pu("hq", "D1", "0042", "2026-01-14T17:45:00", 1),
			want: outcome{At: "2026-01-14T22:45:00Z", Dir: "out", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de, Overtime: 45, Flags: []string{FlagOvertime}}},
		{name: "stay below the overtime minimum", p: pu("hq", "D1", "0042", "2026-01-14T17:20:00", 1),
			want: outcome{At: "2026-01-14T22:20:00Z", Dir: "out", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de}},
		{name: "late back from lunch", p: pu("hq", "D1", "0042", "2026-01-14T12:41:00", 3),
			want: outcome{At: "2026-01-14T17:41:00Z", Dir: "break_in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de, Late: 11, Flags: []string{FlagLate}}},

		// Punches outside every shift.
		{name: "late evening is outside the day shift window", p: pu("hq", "D1", "0042", "2026-01-14T23:30:00", 0),
			want: outcome{At: "2026-01-15T04:30:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, Flags: []string{FlagOutsideShift}}},
		{name: "small hours are outside the day shift window", p: pu("hq", "D1", "0042", "2026-01-14T03:00:00", 255),
			want: outcome{At: "2026-01-14T08:00:00Z", Dir: "unknown", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, Flags: []string{FlagOutsideShift}}},

		// Overnight shifts: the work date is the day the shift started.
		{name: "overnight in rounds up", p: pu("hq", "D1", "0043", "2026-01-14T21:55:00", 0),
			want: outcome{At: "2026-01-15T02:55:00Z", Dir: "in", Date: "2026-01-14", Shift: "night", Person: "emp-2", Zone: ny,
				ShiftStart: "2026-01-15T03:00:00Z", ShiftEnd: "2026-01-15T11:00:00Z", Rounded: "2026-01-15T03:00:00Z", Flags: []string{FlagRounded}}},
		{name: "overnight in late after rounding", p: pu("hq", "D1", "0043", "2026-01-14T22:20:00", 0),
			want: outcome{At: "2026-01-15T03:20:00Z", Dir: "in", Date: "2026-01-14", Shift: "night", Person: "emp-2", Zone: ny,
				ShiftStart: "2026-01-15T03:00:00Z", ShiftEnd: "2026-01-15T11:00:00Z", Rounded: "2026-01-15T03:30:00Z", Late: 30, Flags: []string{FlagLate, FlagRounded}}},
		{name: "overnight out next morning belongs to the start day", p: pu("hq", "D1", "0043", "2026-01-15T06:20:00", 1),
			want: outcome{At: "2026-01-15T11:20:00Z", Dir: "out", Date: "2026-01-14", Shift: "night", Person: "emp-2", Zone: ny,
				ShiftStart: "2026-01-15T03:00:00Z", ShiftEnd: "2026-01-15T11:00:00Z", Rounded: "2026-01-15T11:15:00Z", Overtime: 15, Flags: []string{FlagOvertime, FlagRounded}}},
		{name: "overnight out after midnight is an early leave of the previous day", p: pu("hq", "D1", "0045", "2026-01-15T00:30:00", 1),
			want: outcome{At: "2026-01-15T05:30:00Z", Dir: "out", Date: "2026-01-14", Shift: "night", Person: "emp-5", Zone: ny,
				ShiftStart: "2026-01-15T03:00:00Z", ShiftEnd: "2026-01-15T11:00:00Z", Rounded: "2026-01-15T05:30:00Z", Early: 330, Flags: []string{FlagEarlyLeave}}},
		{name: "friday night shift ending saturday is a friday", p: pu("hq", "D1", "0043", "2026-01-17T06:00:00", 1),
			want: outcome{At: "2026-01-17T11:00:00Z", Dir: "out", Date: "2026-01-16", Shift: "night", Person: "emp-2", Zone: ny,
				ShiftStart: "2026-01-17T03:00:00Z", ShiftEnd: "2026-01-17T11:00:00Z", Rounded: "2026-01-17T11:00:00Z"}},
		{name: "site default overnight shift in India", p: pu("plant", "P1", "7", "2026-01-14T05:59:00", 1),
			want: outcome{At: "2026-01-14T00:29:00Z", Dir: "out", Date: "2026-01-13", Shift: "night", Person: "emp-7", Zone: kol,
				ShiftStart: "2026-01-13T16:30:00Z", ShiftEnd: "2026-01-14T00:30:00Z", Rounded: "2026-01-14T00:15:00Z", Early: 15, Flags: []string{FlagEarlyLeave, FlagRounded}}},

		// Daylight saving.
		{name: "spring-forward gap", p: pu("hq", "D1", "0042", "2026-03-08T02:30:00", 0),
			want: outcome{At: "2026-03-08T07:30:00Z", Dir: "in", Date: "2026-03-08", Shift: "day", Person: "emp-1", Zone: ny, Flags: []string{FlagDSTGap, FlagOutsideShift, FlagWeekend}}},
		{name: "night shift across spring forward lasts 7h: it ends 06:00 EDT", p: pu("hq", "D1", "0047", "2026-03-08T06:00:00", 1),
			want: outcome{At: "2026-03-08T10:00:00Z", Dir: "out", Date: "2026-03-07", Shift: "allweek_night", Person: "emp-11", Zone: ny,
				ShiftStart: "2026-03-08T03:00:00Z", ShiftEnd: "2026-03-08T10:00:00Z", Flags: []string{FlagWeekend}}},
		{name: "night shift across spring forward: out 05:00 EDT is an hour early", p: pu("hq", "D1", "0047", "2026-03-08T05:00:00", 1),
			want: outcome{At: "2026-03-08T09:00:00Z", Dir: "out", Date: "2026-03-07", Shift: "allweek_night", Person: "emp-11", Zone: ny,
				ShiftStart: "2026-03-08T03:00:00Z", ShiftEnd: "2026-03-08T10:00:00Z", Early: 60, Flags: []string{FlagEarlyLeave, FlagWeekend}}},
		{name: "night shift after the change runs on EDT", p: pu("hq", "D1", "0043", "2026-03-09T06:00:00", 1),
			want: outcome{At: "2026-03-09T10:00:00Z", Dir: "out", Date: "2026-03-08", Shift: "night", Person: "emp-2", Zone: ny,
				ShiftStart: "2026-03-09T02:00:00Z", ShiftEnd: "2026-03-09T10:00:00Z", Rounded: "2026-03-09T10:00:00Z", Flags: []string{FlagWeekend, FlagOffDay}}},
		{name: "night shift across fall back lasts 9h: it ends 06:00 EST", p: pu("hq", "D1", "0047", "2026-11-01T06:00:00", 1),
			want: outcome{At: "2026-11-01T11:00:00Z", Dir: "out", Date: "2026-10-31", Shift: "allweek_night", Person: "emp-11", Zone: ny,
				ShiftStart: "2026-11-01T02:00:00Z", ShiftEnd: "2026-11-01T11:00:00Z", Flags: []string{FlagWeekend}}},
		{name: "fall-back overlap: a punch in the repeated hour takes the earlier instant", p: pu("hq", "D1", "0045", "2026-11-01T01:30:00", 0),
			want: outcome{At: "2026-11-01T05:30:00Z", Dir: "in", Date: "2026-10-31", Shift: "night", Person: "emp-5", Zone: ny,
				ShiftStart: "2026-11-01T02:00:00Z", ShiftEnd: "2026-11-01T11:00:00Z", Rounded: "2026-11-01T05:30:00Z", Flags: []string{FlagDSTOverlap, FlagWeekend, FlagOffDay}}},
		{name: "break_in before the break starts is not late", p: pu("hq", "D1", "0045", "2026-11-04T01:30:00", 3),
			want: outcome{At: "2026-11-04T06:30:00Z", Dir: "break_in", Date: "2026-11-03", Shift: "night", Person: "emp-5", Zone: ny,
				ShiftStart: "2026-11-04T03:00:00Z", ShiftEnd: "2026-11-04T11:00:00Z"}},

		// Weekends, holidays and shift days.
		{name: "saturday work on a weekday shift", p: pu("hq", "D1", "0042", "2026-01-17T09:30:00", 0),
			want: outcome{At: "2026-01-17T14:30:00Z", Dir: "in", Date: "2026-01-17", Shift: "day", Person: "emp-1", Zone: ny,
				ShiftStart: "2026-01-17T14:00:00Z", ShiftEnd: "2026-01-17T22:00:00Z", Flags: []string{FlagWeekend, FlagOffDay}}},
		{name: "weekend crew is late on saturday", p: pu("hq", "D1", "0044", "2026-01-17T08:20:00", 0),
			want: outcome{At: "2026-01-17T13:20:00Z", Dir: "in", Date: "2026-01-17", Shift: "weekend_crew", Person: "emp-9", Zone: ny,
				ShiftStart: "2026-01-17T13:00:00Z", ShiftEnd: "2026-01-17T21:00:00Z", Late: 20, Flags: []string{FlagLate, FlagWeekend}}},
		{name: "weekend crew on a monday", p: pu("hq", "D1", "0044", "2026-01-19T08:20:00", 0),
			want: outcome{At: "2026-01-19T13:20:00Z", Dir: "in", Date: "2026-01-19", Shift: "weekend_crew", Person: "emp-9", Zone: ny,
				ShiftStart: "2026-01-19T13:00:00Z", ShiftEnd: "2026-01-19T21:00:00Z", Flags: []string{FlagOffDay}}},
		{name: "yearly holiday", p: pu("hq", "D1", "0042", "2026-12-25T09:30:00", 0),
			want: outcome{At: "2026-12-25T14:30:00Z", Dir: "in", Date: "2026-12-25", Shift: "day", Person: "emp-1", Zone: ny,
				ShiftStart: "2026-12-25T14:00:00Z", ShiftEnd: "2026-12-25T22:00:00Z", Flags: []string{FlagHoliday}}},
		{name: "dated holiday in summer time", p: pu("hq", "D1", "0042", "2026-07-03T10:00:00", 0),
			want: outcome{At: "2026-07-03T14:00:00Z", Dir: "in", Date: "2026-07-03", Shift: "day", Person: "emp-1", Zone: ny,
				ShiftStart: "2026-07-03T13:00:00Z", ShiftEnd: "2026-07-03T21:00:00Z", Flags: []string{FlagHoliday}}},
		{name: "holiday of the overnight shift's start day", p: pu("plant", "P1", "7", "2026-01-27T05:00:00", 1),
			want: outcome{At: "2026-01-26T23:30:00Z", Dir: "out", Date: "2026-01-26", Shift: "night", Person: "emp-7", Zone: kol,
				ShiftStart: "2026-01-26T16:30:00Z", ShiftEnd: "2026-01-27T00:30:00Z", Rounded: "2026-01-26T23:30:00Z", Flags: []string{FlagHoliday}}},
		{name: "saturday is a working day at plant", p: pu("plant", "P1", "7", "2026-01-17T22:00:00", 0),
			want: outcome{At: "2026-01-17T16:30:00Z", Dir: "in", Date: "2026-01-17", Shift: "night", Person: "emp-7", Zone: kol,
				ShiftStart: "2026-01-17T16:30:00Z", ShiftEnd: "2026-01-18T00:30:00Z", Rounded: "2026-01-17T16:30:00Z"}},
		{name: "friday is the weekend in dubai", p: pu("dubai", "X1", "8", "2026-01-16T09:00:00", 0),
			want: outcome{At: "2026-01-16T05:00:00Z", Dir: "in", Date: "2026-01-16", Shift: "day", Person: "emp-8", Zone: "Asia/Dubai",
				ShiftStart: "2026-01-16T05:00:00Z", ShiftEnd: "2026-01-16T13:00:00Z", Flags: []string{FlagWeekend, FlagOffDay}}},

		// State codes and device models.
		{name: "face terminal: state by shift window (in)", p: pu("hq", "SF-100", "0042", "2026-01-14T08:55:00", 0),
			want: outcome{At: "2026-01-14T13:55:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de, Flags: []string{FlagDirectionInferred}}},
		{name: "face terminal: state by shift window (out)", p: pu("hq", "SF-100", "0042", "2026-01-14T17:02:00", 1),
			want: outcome{At: "2026-01-14T22:02:00Z", Dir: "out", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de, Flags: []string{FlagDirectionInferred}}},
		{name: "state 255: first half of lunch is a break out", p: pu("hq", "SF-100", "0042", "2026-01-14T12:10:00", 255),
			want: outcome{At: "2026-01-14T17:10:00Z", Dir: "break_out", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de, Flags: []string{FlagDirectionInferred}}},
		{name: "state 255: second half of lunch is a break in", p: pu("hq", "D1", "0042", "2026-01-14T12:25:00", 255),
			want: outcome{At: "2026-01-14T17:25:00Z", Dir: "break_in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de, Flags: []string{FlagDirectionInferred}}},
		{name: "state 255 before the shift's midpoint is a (late) in", p: pu("hq", "D1", "0042", "2026-01-14T12:59:00", 255),
			want: outcome{At: "2026-01-14T17:59:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de, Late: 239, Flags: []string{FlagDirectionInferred, FlagLate}}},
		{name: "state 255 from the shift's midpoint on is an (early) out", p: pu("hq", "D1", "0042", "2026-01-14T13:00:00", 255),
			want: outcome{At: "2026-01-14T18:00:00Z", Dir: "out", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de, Early: 240, Flags: []string{FlagDirectionInferred, FlagEarlyLeave}}},
		{name: "unknown state code decided by the window and flagged", p: pu("hq", "D1", "0042", "2026-01-14T16:00:00", 9),
			want: outcome{At: "2026-01-14T21:00:00Z", Dir: "out", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de, Early: 60, Flags: []string{FlagDirectionInferred, FlagEarlyLeave, FlagUnknownState}}},
		{name: "unknown state code outside every window", p: pu("hq", "D1", "0042", "2026-01-14T23:00:00", 9),
			want: outcome{At: "2026-01-15T04:00:00Z", Dir: "unknown", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, Flags: []string{FlagOutsideShift, FlagUnknownState}}},
		{name: "legacy model maps 2 to out, inherits 0", p: pu("hq", "OLD-1", "0042", "2026-01-14T17:00:00", 2),
			want: outcome{At: "2026-01-14T22:00:00Z", Dir: "out", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de}},
		{name: "overtime-in code 4 is an in", p: pu("hq", "D1", "0042", "2026-01-14T09:00:00", 4),
			want: outcome{At: "2026-01-14T14:00:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de}},

		// Roster and assignments.
		{name: "unknown user is published and flagged", p: pu("hq", "D1", "9999", "2026-01-14T09:20:00", 0),
			want: outcome{At: "2026-01-14T14:20:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Zone: ny, ShiftStart: ds, ShiftEnd: de, Late: 20, Flags: []string{FlagLate, FlagUnknownUser}}},
		{name: "same user id at another site is someone else", p: pu("plant", "P1", "0042", "2026-01-14T22:00:00", 0),
			want: outcome{At: "2026-01-14T16:30:00Z", Dir: "in", Date: "2026-01-14", Shift: "night", Zone: kol,
				ShiftStart: "2026-01-14T16:30:00Z", ShiftEnd: "2026-01-15T00:30:00Z", Rounded: "2026-01-14T16:30:00Z", Flags: []string{FlagUnknownUser}}},
		{name: "no roster configured: no lookup, no flag", p: pu("hq", "D1", "9999", "2026-01-14T09:00:00", 0), ros: nilRoster,
			want: outcome{At: "2026-01-14T14:00:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Zone: ny, ShiftStart: ds, ShiftEnd: de}},
		{name: "roster names a shift the rules lack: next assignment", p: pu("hq", "D1", "0046", "2026-01-14T09:00:00", 0),
			want: outcome{At: "2026-01-14T14:00:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-6", Zone: ny, ShiftStart: ds, ShiftEnd: de, Flags: []string{FlagUnknownShift}}},
		{name: "unlisted site: default zone and global default shift", p: pu("mars", "M1", "1", "2026-01-14T09:00:00", 0),
			want: outcome{At: "2026-01-14T09:00:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-10", Zone: "UTC",
				ShiftStart: "2026-01-14T09:00:00Z", ShiftEnd: "2026-01-14T17:00:00Z", Flags: []string{FlagDefaultZone}}},

		// Clocks: skew, device zones.
		{name: "fast clock corrected into the grace", p: pu("hq", "D1", "0042", "2026-01-14T09:10:00", 0, offset(300_000)),
			want: outcome{At: "2026-01-14T14:05:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de, ClockOffsetMS: 300_000, Flags: []string{FlagClockCorrected}}},
		{name: "slow clock corrected makes the punch late", p: pu("hq", "D1", "0042", "2026-01-14T08:10:00", 0, offset(-3_600_000)),
			want: outcome{At: "2026-01-14T14:10:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de, Late: 10, ClockOffsetMS: -3_600_000, Flags: []string{FlagClockCorrected, FlagLate}}},
		{name: "small offset is left alone", p: pu("hq", "D1", "0042", "2026-01-14T09:00:00", 0, offset(20_000)),
			want: outcome{At: "2026-01-14T14:00:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de}},
		{name: "correction keeps milliseconds", p: pu("hq", "D1", "0042", "2026-01-14T09:00:00", 0, offset(-45_250)),
			want: outcome{At: "2026-01-14T14:00:45Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de, ClockOffsetMS: -45_250, Flags: []string{FlagClockCorrected}}},
		{name: "corrected clock moves the work date back", p: pu("hq", "D1", "0043", "2026-01-15T23:50:00", 1, offset(86_400_000)),
			want: outcome{At: "2026-01-15T04:50:00Z", Dir: "out", Date: "2026-01-14", Shift: "night", Person: "emp-2", Zone: ny,
				ShiftStart: "2026-01-15T03:00:00Z", ShiftEnd: "2026-01-15T11:00:00Z", Rounded: "2026-01-15T04:45:00Z", Early: 375, ClockOffsetMS: 86_400_000,
				Flags: []string{FlagClockCorrected, FlagEarlyLeave, FlagRounded}}},
		{name: "reset clock rescued by the measured offset", p: pu("hq", "D1", "0042", "2000-01-01T00:00:00", 0,
			offset(-(time.Date(2026, 1, 14, 9, 0, 0, 0, time.UTC).Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).Milliseconds())), collected("2026-01-14T15:00:00Z")),
			want: outcome{At: "2026-01-14T14:00:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de,
				ClockOffsetMS: -(time.Date(2026, 1, 14, 9, 0, 0, 0, time.UTC).Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).Milliseconds()), Flags: []string{FlagClockCorrected}}},
		{name: "device listed with its own zone", p: pu("hq", "BER-1", "0042", "2026-01-14T15:00:00", 0),
			want: outcome{At: "2026-01-14T14:00:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: "Europe/Berlin", ShiftStart: ds, ShiftEnd: de}},
		{name: "punch's device zone wins over the site's", p: pu("hq", "D1", "0042", "2026-01-14T19:30:00", 0, deviceZone("Asia/Kolkata")),
			want: outcome{At: "2026-01-14T14:00:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: kol, ShiftStart: ds, ShiftEnd: de}},
		{name: "device zone equal to the site's", p: pu("hq", "D1", "0042", "2026-01-14T09:00:00", 0, deviceZone(ny)),
			want: outcome{At: "2026-01-14T14:00:00Z", Dir: "in", Date: "2026-01-14", Shift: "day", Person: "emp-1", Zone: ny, ShiftStart: ds, ShiftEnd: de}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := ros
			if tt.ros == nilRoster {
				rs = nil
			}
			ev, err := r.Apply(tt.p, rs, proto.Lineage{RawSubject: "raw.punch.x.y", RawStream: "RAW", RawSequence: 7})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			got := outcomeOf(ev)
			if tt.want.Flags == nil {
				tt.want.Flags = []string{}
			}
			if got.Flags == nil {
				got.Flags = []string{}
			}
			slices.Sort(tt.want.Flags)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("event differs (-want +got):\n%s", diff)
			}
			if err := ev.Validate(); err != nil {
				t.Errorf("event breaks the contract: %v", err)
			}
			if want := proto.AttendanceID(tt.p.ID, r.Version, ev.RosterVersion); ev.ID != want {
				t.Errorf("id = %s, want AttendanceID(raw id, rules version, roster version) = %s", ev.ID, want)
			}
			if e, ok := rs.Lookup(tt.p.Site, tt.p.UserID); ok != (ev.RosterVersion != "") || ok && e.Version != ev.RosterVersion {
				t.Errorf("roster version %q does not match the roster entry", ev.RosterVersion)
			}
		})
	}
}

// nilRoster marks a table row that runs without a roster.
var nilRoster = &roster.Roster{}

func TestApplyRejections(t *testing.T) {
	r := mustParse(t, payrollRules)
	noDefault := mustParse(t, "sites:\n  hq:\n    time_zone: Europe/Berlin\n")
	tests := []struct {
		name string
		r    *Rules
		p    proto.RawPunch
		code string
		msg  string
	}{
		{"reset clock without an offset", r, pu("hq", "D1", "0042", "2000-01-01T00:00:00", 0), RejectTooOld, "before 2010"},
		{"clock far ahead of collection", r, pu("hq", "D1", "0042", "2026-01-14T09:00:00", 0, collected("2026-01-14T10:00:00Z")), RejectInFuture, "after it was collected"},
		{"fast clock within max_future once corrected", r, pu("hq", "D1", "0042", "2026-01-14T13:00:00", 0, offset(14_400_000), collected("2026-01-14T14:30:00Z")), "", ""},
		{"device zone that does not exist", r, pu("hq", "D1", "0042", "2026-01-14T09:00:00", 0, deviceZone("Mars/Olympus")), RejectBadTimeZone, "Mars/Olympus"},
		{"unknown site without a default zone", noDefault, pu("elsewhere", "D1", "0042", "2026-01-14T09:00:00", 0), RejectUnknownSite, "add it under sites"},
		{"device time that does not exist", r, func() proto.RawPunch {
			p := pu("hq", "D1", "0042", "2026-01-14T09:00:00", 0)
			p.DeviceTime = "2026-02-30T09:00:00"
			return p
		}(), RejectBadTime, "2026-02-30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.r.Apply(tt.p, testRoster(t), proto.Lineage{})
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Apply: %v, want an event", err)
				}
				return
			}
			var rej *Rejection
			if !errors.As(err, &rej) || rej.Code != tt.code || !strings.Contains(rej.Message, tt.msg) {
				t.Fatalf("Apply error = %v, want rejection %s mentioning %q", err, tt.code, tt.msg)
			}
		})
	}
}

// TestRosterVersionInID: the same punch under the same rules and roster has
// the same id; a roster fix for the person gives a new id; an unknown user's
// event has the plain CleanID.
func TestRosterVersionInID(t *testing.T) {
	r := mustParse(t, payrollRules)
	p := pu("hq", "D1", "0042", "2026-01-14T09:00:00", 0)
	a, _ := r.Apply(p, testRoster(t), proto.Lineage{})
	b, _ := r.Apply(p, testRoster(t), proto.Lineage{})
	fixed, err := roster.New([]roster.Entry{{Site: "hq", UserID: "0042", PersonID: "emp-1", Department: "warehouse"}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.Apply(p, fixed, proto.Lineage{})
	renamed, _ := roster.New([]roster.Entry{{Site: "hq", UserID: "0042", PersonID: "emp-1", Name: "Ada Lovelace", Department: "office"}})
	d, _ := r.Apply(p, renamed, proto.Lineage{})
	empty, _ := roster.New(nil)
	u, _ := r.Apply(p, empty, proto.Lineage{})
	switch {
	case a.ID != b.ID:
		t.Errorf("same input, rules and roster gave ids %s and %s", a.ID, b.ID)
	case a.ID == c.ID:
		t.Errorf("a department change kept the id %s", a.ID)
	case a.ID != d.ID:
		t.Errorf("a name change (not in the event) changed the id")
	case u.ID != proto.CleanID(p.ID, r.Version):
		t.Errorf("unknown user's id %s is not CleanID(raw id, rules version)", u.ID)
	case c.Shift != "night":
		t.Errorf("department change did not move the person to the night shift: %q", c.Shift)
	}
}

func TestExplain(t *testing.T) {
	r := mustParse(t, payrollRules)
	steps, ev, err := r.Explain(pu("hq", "SF-100", "0043", "2026-03-08T02:30:00", 255, offset(90_000)), testRoster(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var text strings.Builder
	for _, s := range steps {
		names = append(names, s.Name)
		text.WriteString(s.Name + ": " + s.Detail + "\n")
	}
	wantNames := []string{"zone", "clock", "dst", "roster", "shift", "state", "window", "direction", "calendar", "payroll", "result"}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("steps (-want +got):\n%s\n%s", diff, text.String())
	}
	for _, want := range []string{"corrected to 2026-03-08T02:28:30", "never happened", "department", "assignments.departments.warehouse → shift night",
		"decided by the shift window", "work date 2026-03-07", ev.ID} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("explanation lacks %q:\n%s", want, text.String())
		}
	}
	got, err := r.Apply(pu("hq", "SF-100", "0043", "2026-03-08T02:30:00", 255, offset(90_000)), testRoster(t), proto.Lineage{RawSubject: "raw.punch.hq.SF-100"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, ev); diff != "" {
		t.Errorf("Explain's event differs from Apply's (-apply +explain):\n%s", diff)
	}
	steps, _, err = r.Explain(pu("hq", "D1", "0042", "2000-01-01T00:00:00", 0), nil)
	if err == nil || steps[len(steps)-1].Name != "result" || !strings.Contains(steps[len(steps)-1].Detail, "too_old") {
		t.Errorf("a rejection's explanation ends with %+v, err %v", steps[len(steps)-1], err)
	}
}
