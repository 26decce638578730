package rules

import (
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/transformer/internal/roster"
)

// Rejection reason codes specific to the rules (proto.ReasonInvalid covers
// contract violations). They appear at the start of the dead letter's reason.
const (
	RejectUnknownSite  = "unknown_site"
	RejectBadTime      = "bad_time"
	RejectBadTimeZone  = "bad_time_zone"
	RejectTooOld       = "too_old"
	RejectInFuture     = "in_future"
	RejectMissingField = "missing_field"
	RejectBadField     = "bad_field"
	RejectBadPayload   = "bad_payload"
)

// Flags an event may carry: findings that did not stop it.
const (
	FlagDSTGap            = "dst_gap"            // the device time never happened (spring forward); read with the offset before the gap
	FlagDSTOverlap        = "dst_overlap"        // the device time happened twice (fall back); the earlier instant was taken
	FlagDefaultZone       = "default_zone"       // the site is not in the rules; default_time_zone was used
	FlagClockCorrected    = "clock_corrected"    // the device clock was off by more than clock.correct_above; corrected
	FlagUnknownState      = "unknown_state"      // the state code is not mapped for the device's model
	FlagDirectionInferred = "direction_inferred" // the direction was decided by the shift window
	FlagUnknownUser       = "unknown_user"       // the roster has no entry for the site and user id
	FlagUnknownShift      = "unknown_shift"      // the roster or an assignment names a shift the rules do not have
	FlagNoShift           = "no_shift"           // the rules have shifts, but none is assigned to the person
	FlagOutsideShift      = "outside_shift"      // the punch is outside every window of the assigned shift
	FlagLate              = "late"
	FlagEarlyLeave        = "early_leave"
	FlagOvertime          = "overtime"
	FlagWeekend           = "weekend"
	FlagHoliday           = "holiday"
	FlagOffDay            = "off_day" // the work date is not a working day of the shift
	FlagRounded           = "rounded" // a rounding rule moved the payroll time
)

// Rejection says why an input cannot become a clean output. It is a
// permanent failure: the input goes to the dead-letter stream, and the
// reason starts with Code.
type Rejection struct {
	Code    string
	Message string
}

func (r *Rejection) Error() string { return r.Code + ": " + r.Message }

// Step is one step of a classification, as Explain reports it.
type Step struct {
	Name   string
	Detail string
}

// trace collects steps; a nil trace records nothing and costs nothing.
type trace struct{ steps []Step }

func (t *trace) add(name, format string, args ...any) {
	t.steps = append(t.steps, Step{Name: name, Detail: fmt.Sprintf(format, args...)})
}

// Apply turns a raw punch into an attendance event under r and the roster
// ros (nil: no roster configured, so users are not looked up and never
// flagged unknown). ProcessedAt is left for the caller. The event's id is
// proto.AttendanceID(p.ID, r.Version, roster entry version), so that a replay
// under the same rules and roster yields the same ids and a roster fix yields
// new ones. It returns a *Rejection when the punch breaks the rules.
//
// Apply does not validate the punch against the contract; decode it with
// proto.DecodeRawPunch first. It is safe for concurrent use.
func (r *Rules) Apply(p proto.RawPunch, ros *roster.Roster, lin proto.Lineage) (proto.AttendanceEvent, error) {
	return r.apply(&p, ros, lin, nil)
}

// Explain is Apply with a step-by-step account of how the punch was
// classified. The steps are filled in as far as the evaluation got, also
// when it returns a rejection.
func (r *Rules) Explain(p proto.RawPunch, ros *roster.Roster) ([]Step, proto.AttendanceEvent, error) {
	t := &trace{}
	ev, err := r.apply(&p, ros, proto.Lineage{RawSubject: proto.RawPunchSubject(p.Site, p.DeviceSerial)}, t)
	if err != nil {
		t.add("result", "rejected to the dead-letter stream: %v", err)
	} else {
		t.add("result", "id %s (rules %s), flags %v", ev.ID, ev.RulesVersion, ev.Flags)
	}
	return t.steps, ev, err
}

// clockZone returns the zone the device clock runs on: a listed device's
// time_zone, else the punch's device_time_zone, else the site's, else the
// default zone (flagged). The reason is only spelled out when tracing.
func (r *Rules) clockZone(p *proto.RawPunch, site *Site, dev *Device, tr *trace) (*zoneTable, string, error) {
	var tab *zoneTable
	var name, why string
	switch {
	case dev != nil && dev.tab != nil:
		tab, name = dev.tab, dev.ZoneName
		if tr != nil {
			why = "the rules' devices." + dev.Serial + ".time_zone"
		}
	case p.DeviceTimeZone != "" && (site == nil || p.DeviceTimeZone != site.ZoneName):
		var err error
		if tab, err = r.loadZone(p.DeviceTimeZone); err != nil {
			return nil, "", &Rejection{Code: RejectBadTimeZone,
				Message: fmt.Sprintf("device_time_zone %q of device %s is not an IANA time zone: fix the collector's device settings or list the device under devices with its time_zone", p.DeviceTimeZone, p.DeviceSerial)}
		}
		name, why = p.DeviceTimeZone, "the punch's device_time_zone"
	case site != nil:
		tab, name = site.tab, site.ZoneName
		if tr != nil {
			why = "site " + site.Name
		}
	case r.DefaultZone != nil:
		tab, name, why = r.defaultTab, r.DefaultZone.String(), "default_time_zone (site not in the rules)"
	default:
		return nil, "", &Rejection{Code: RejectUnknownSite,
			Message: fmt.Sprintf("site %q is not in the rules file and there is no default_time_zone: add it under sites", p.Site)}
	}
	if tr != nil {
		tr.add("zone", "device clock read as %s (from %s)", name, why)
	}
	return tab, name, nil
}

// loadZone returns the table of a zone named by a punch, loading it once.
func (r *Rules) loadZone(name string) (*zoneTable, error) {
	if v, ok := r.zones.Load(name); ok {
		return v.(*zoneTable), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "Local" {
		return nil, fmt.Errorf("time zone %q: %v", name, err)
	}
	v, _ := r.zones.LoadOrStore(name, newZoneTable(loc))
	return v.(*zoneTable), nil
}

// device returns the listed device and the model of a serial: the device's
// model, else the model with the longest matching serial prefix.
func (r *Rules) device(serial string) (*Device, *Model) {
	dev := r.Devices[serial]
	if dev != nil && dev.Model != nil {
		return dev, dev.Model
	}
	for _, pm := range r.prefixes {
		if strings.HasPrefix(serial, pm.prefix) {
			return dev, pm.model
		}
	}
	return dev, nil
}

// assign chooses the shift: the roster entry's shift, then assignments by
// person id and department, then the site's default, then the global
// default. A named shift the rules lack is skipped and flagged.
func (r *Rules) assign(e *roster.Entry, site *Site, flags *flagSet, tr *trace) *Shift {
	chosen := func(s *Shift, whyFormat, key string) *Shift {
		if tr != nil { // the text is only built when tracing
			tr.add("shift", "%s → shift %s (%s-%s)", fmt.Sprintf(whyFormat, key), s.Name, formatClock(s.Start), formatClock(s.End))
		}
		return s
	}
	if e != nil {
		if e.Shift != "" {
			if s := r.Shifts[e.Shift]; s != nil {
				return chosen(s, "roster entry%s", "")
			}
			*flags |= fUnknownShift
			if tr != nil {
				tr.add("shift", "the roster entry names shift %q, which the rules do not have: skipped (flag unknown_shift)", e.Shift)
			}
		}
		if s := r.personShift[e.PersonID]; s != nil {
			return chosen(s, "assignments.persons.%s", e.PersonID)
		}
		if s := r.deptShift[e.Department]; s != nil && e.Department != "" {
			return chosen(s, "assignments.departments.%s", e.Department)
		}
	}
	if site != nil && site.shift != nil {
		return chosen(site.shift, "sites.%s.shift", site.Name)
	}
	if r.defaultShift != nil {
		return chosen(r.defaultShift, "assignments.default_shift%s", "")
	}
	if tr != nil {
		tr.add("shift", "no shift assigned (no roster shift, no assignment, no site or global default)")
	}
	return nil
}

// datesCached is the size of Rules' cache of formatted work dates.
const datesCached = 1024

type cachedDate struct {
	day int64
	s   string
}

// date formats a day number as YYYY-MM-DD through a small direct-mapped
// cache: the punches of a few weeks share a few dozen work dates, and the
// string is the same immutable value for all of them.
func (r *Rules) date(day int64) string {
	slot := &r.dates[uint64(day)%datesCached]
	if c := slot.Load(); c != nil && c.day == day {
		return c.s
	}
	s := formatDate(day)
	slot.Store(&cachedDate{day, s})
	return s
}

// flagSet is a set of flags as bits, in the order of flagNames; the event
// lists them in that order.
type flagSet uint32

const (
	fDSTGap flagSet = 1 << iota
	fDSTOverlap
	fDefaultZone
	fClockCorrected
	fUnknownState
	fDirectionInferred
	fUnknownUser
	fUnknownShift
	fNoShift
	fOutsideShift
	fLate
	fEarlyLeave
	fOvertime
	fWeekend
	fHoliday
	fOffDay
	fRounded
)

var flagNames = [...]string{FlagDSTGap, FlagDSTOverlap, FlagDefaultZone, FlagClockCorrected, FlagUnknownState, FlagDirectionInferred, FlagUnknownUser, FlagUnknownShift, FlagNoShift, FlagOutsideShift, FlagLate, FlagEarlyLeave, FlagOvertime, FlagWeekend, FlagHoliday, FlagOffDay, FlagRounded}

// strings lists the flags, nil for none.
func (f flagSet) strings() []string {
	if f == 0 {
		return nil
	}
	out := make([]string, 0, bits.OnesCount32(uint32(f)))
	for i, name := range flagNames {
		if f&(1<<i) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// instance is one occurrence of a shift, starting on a day number.
type instance struct {
	day        int64
	start, end int64 // wall-clock seconds of the site zone
	lo, hi     int64 // valid-punch window, wall-clock seconds
}

// findInstance returns the occurrence of s whose valid-punch window holds
// the wall clock w: the one starting the day before, the same day or the day
// after. Windows are at most 24h long, so at most two can hold w; the one
// whose start or end is nearer wins, the earlier on a tie.
func findInstance(s *Shift, w int64) (instance, bool) {
	day := floorDiv(w, secondsPerDay)
	var best instance
	bestDist := int64(-1)
	for d := day - 1; d <= day+1; d++ {
		base := d * secondsPerDay
		in := instance{day: d, start: base + s.Start, end: base + s.End}
		in.lo, in.hi = in.start-s.EarliestPunch, in.end+s.LatestPunch
		if w < in.lo || w > in.hi {
			continue
		}
		dist := min(abs(w-in.start), abs(w-in.end))
		if bestDist < 0 || dist < bestDist {
			best, bestDist = in, dist
		}
	}
	return best, bestDist >= 0
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// inferDirection decides an in/out/break punch by where it falls in the
// shift instance: inside a break, the first half is break_out and the second
// break_in; otherwise before the shift's midpoint is in, from it on out.
func inferDirection(s *Shift, in instance, w int64) string {
	base := in.day * secondsPerDay
	for _, b := range s.Breaks {
		bs, be := base+b.Start, base+b.End
		if w >= bs && w <= be {
			if w-bs < be-w {
				return proto.DirectionBreakOut
			}
			return proto.DirectionBreakIn
		}
	}
	if w < in.start+(in.end-in.start)/2 {
		return proto.DirectionIn
	}
	return proto.DirectionOut
}

func (r *Rules) apply(p *proto.RawPunch, ros *roster.Roster, lin proto.Lineage, tr *trace) (proto.AttendanceEvent, error) {
	var flags flagSet
	site := r.Sites[p.Site]
	dev, model := r.device(p.DeviceSerial)

	// 1. The zone the device clock runs on.
	clockTab, zoneName, err := r.clockZone(p, site, dev, tr)
	if err != nil {
		return proto.AttendanceEvent{}, err
	}
	if site == nil {
		flags |= fDefaultZone
	}

	// 2. The device's wall clock, corrected for a measured offset.
	wall, year, err := parseWall(p.DeviceTime)
	if err != nil {
		return proto.AttendanceEvent{}, &Rejection{Code: RejectBadTime, Message: err.Error()}
	}
	var offsetMS, measured int64
	if p.ClockOffsetMS != nil {
		measured = *p.ClockOffsetMS
	}
	if r.ClockCorrectAbove > 0 && abs(measured) > r.ClockCorrectAbove.Milliseconds() {
		offsetMS = measured
		wall -= floorDiv(offsetMS+500, 1000)
		year, _, _ = yearOf(wall)
		flags |= fClockCorrected
		if tr != nil {
			tr.add("clock", "collector measured the device clock %+dms off (more than clock.correct_above %v): device time corrected to %s",
				offsetMS, r.ClockCorrectAbove, formatWall(wall))
		}
	} else if tr != nil {
		switch {
		case p.ClockOffsetMS == nil:
			tr.add("clock", "no clock offset measured: device time %s taken as is", p.DeviceTime)
		case r.ClockCorrectAbove == 0:
			tr.add("clock", "clock offset %+dms measured; clock.correct_above is not set, so no correction", measured)
		default:
			tr.add("clock", "clock offset %+dms is within clock.correct_above %v: no correction", measured, r.ClockCorrectAbove)
		}
	}
	if year < r.EarliestYear {
		return proto.AttendanceEvent{}, &Rejection{Code: RejectTooOld,
			Message: fmt.Sprintf("device time %s is before %d: check the device clock", p.DeviceTime, r.EarliestYear)}
	}

	// 3. Wall clock → instant, daylight saving resolved.
	at, dst := clockTab.resolve(wall)
	switch dst {
	case FlagDSTGap:
		flags |= fDSTGap
	case FlagDSTOverlap:
		flags |= fDSTOverlap
	}
	if tr != nil {
		switch dst {
		case FlagDSTGap:
			tr.add("dst", "%s never happened in %s (clocks sprang forward): read with the offset before the gap → %s (flag dst_gap)", formatWall(wall), zoneName, utc(at))
		case FlagDSTOverlap:
			tr.add("dst", "%s happened twice in %s (clocks fell back): the earlier instant %s (flag dst_overlap)", formatWall(wall), zoneName, utc(at))
		default:
			tr.add("instant", "%s in %s is %s", formatWall(wall), zoneName, utc(at))
		}
	}
	subMS := int64(0)
	if offsetMS != 0 {
		subMS = floorDiv(offsetMS+500, 1000)*1000 - offsetMS // keep millisecond precision of the correction
	}
	occurred := time.UnixMilli(at*1000 + subMS).UTC()
	if !p.CollectedAt.IsZero() && occurred.Sub(p.CollectedAt) > r.MaxFuture {
		return proto.AttendanceEvent{}, &Rejection{Code: RejectInFuture,
			Message: fmt.Sprintf("device time %s (%s) is %v after it was collected: check the device clock", p.DeviceTime, zoneName, occurred.Sub(p.CollectedAt).Round(time.Second))}
	}

	// 4. The site's wall clock: shifts, calendars and work dates are local
	// to the site.
	siteTab, siteWall := clockTab, wall
	if site != nil && site.tab != clockTab {
		siteTab = site.tab
		siteWall = at + siteTab.offsetAt(at)
		if tr != nil {
			tr.add("site time", "site %s runs on %s: %s there", site.Name, site.ZoneName, formatWall(siteWall))
		}
	}

	// 5. Who punched.
	var entry *roster.Entry
	if ros != nil {
		var ok bool
		if entry, ok = ros.Lookup(p.Site, p.UserID); !ok {
			entry = nil
			flags |= fUnknownUser
			if tr != nil {
				tr.add("roster", "user %q at site %q is not in the roster (flag unknown_user): published for HR to fix the roster and replay", p.UserID, p.Site)
			}
		} else if tr != nil {
			tr.add("roster", "user %q at site %q is person %s (%s), department %q, roster shift %q (entry version %s)", p.UserID, p.Site, entry.PersonID, entry.Name, entry.Department, entry.Shift, entry.Version)
		}
	} else if tr != nil {
		tr.add("roster", "no roster configured: user not looked up")
	}

	// 6. The shift.
	shift := r.assign(entry, site, &flags, tr)

	// 7. Direction from the state code and the device model.
	dir := r.defaultStates[p.State&255]
	modelName := "default states"
	if model != nil {
		dir = model.states[p.State&255]
		modelName = "model " + model.Name
	}
	if p.State < 0 || p.State > 255 {
		dir = ""
	}
	if tr != nil {
		if dir == "" {
			tr.add("state", "state %d is not mapped by %s (flag unknown_state)", p.State, modelName)
		} else {
			tr.add("state", "state %d → %s (%s)", p.State, dir, modelName)
		}
	}
	if dir == "" {
		flags |= fUnknownState
	}

	ev := proto.AttendanceEvent{
		SchemaVersion: proto.SchemaVersion,
		RulesVersion:  r.Version,
		Site:          p.Site,
		DeviceSerial:  p.DeviceSerial,
		UserID:        p.UserID,
		OccurredAt:    occurred,
		DeviceTime:    p.DeviceTime,
		TimeZone:      zoneName,
		State:         p.State,
		VerifyMode:    p.VerifyMode,
		ClockOffsetMS: offsetMS,
	}
	if entry != nil {
		ev.PersonID, ev.Department, ev.RosterVersion = entry.PersonID, entry.Department, entry.Version
	}

	// 8. The shift occurrence, work date, payroll minutes.
	workDay := floorDiv(siteWall, secondsPerDay)
	var in instance
	found := false
	if shift != nil {
		ev.Shift = shift.Name
		in, found = findInstance(shift, siteWall)
		if !found {
			flags |= fOutsideShift
			if tr != nil {
				tr.add("window", "%s is outside every window of shift %s (from %s before start to %s after end): work date is the calendar date (flag outside_shift)",
					formatWall(siteWall), shift.Name, time.Duration(shift.EarliestPunch)*time.Second, time.Duration(shift.LatestPunch)*time.Second)
			}
		} else {
			workDay = in.day
			if tr != nil {
				tr.add("window", "shift %s starting %s: window %s .. %s holds the punch → work date %s",
					shift.Name, formatDate(in.day), formatWall(in.lo), formatWall(in.hi), formatDate(in.day))
			}
		}
	} else if len(r.Shifts) > 0 {
		flags |= fNoShift
	}
	if dir == DirectionAuto || dir == "" {
		if found {
			dir = inferDirection(shift, in, siteWall)
			flags |= fDirectionInferred
			if tr != nil {
				tr.add("direction", "decided by the shift window: %s (flag direction_inferred)", dir)
			}
		} else {
			dir = proto.DirectionUnknown
			if tr != nil {
				tr.add("direction", "no shift window to decide by: unknown")
			}
		}
	}
	ev.Direction = dir
	ev.WorkDate = r.date(workDay)

	// Calendar of the work date.
	wd := weekday(workDay)
	weekend := site != nil && site.Weekend[wd] || site == nil && (wd == time.Saturday || wd == time.Sunday)
	if weekend {
		flags |= fWeekend
	}
	var holidayName string
	holiday := false
	if site != nil {
		holidayName, holiday = site.Holidays.holiday(workDay)
	}
	if holiday {
		flags |= fHoliday
	}
	if tr != nil {
		switch {
		case holiday && weekend:
			tr.add("calendar", "work date %s (%s) is a weekend day and the holiday %q (flags weekend, holiday)", ev.WorkDate, wd, holidayName)
		case holiday:
			tr.add("calendar", "work date %s (%s) is the holiday %q (flag holiday)", ev.WorkDate, wd, holidayName)
		case weekend:
			tr.add("calendar", "work date %s is a %s, a weekend day (flag weekend)", ev.WorkDate, wd)
		default:
			tr.add("calendar", "work date %s is a %s, a working day", ev.WorkDate, wd)
		}
	}

	if found {
		r.payroll(&ev, shift, in, siteWall, siteTab, occurred, holiday, weekend, &flags, tr)
	}

	lin.RawID = p.ID
	if lin.RunID == "" {
		lin.RunID = p.RunID
	}
	ev.Lineage = lin
	ev.Flags = flags.strings()
	ev.ID = proto.AttendanceID(p.ID, r.Version, ev.RosterVersion)
	return ev, nil
}

// payroll fills the shift instants, rounding and late, early-leave and
// overtime minutes of an event inside a shift window.
func (r *Rules) payroll(ev *proto.AttendanceEvent, s *Shift, in instance, w int64, z *zoneTable,
	occurred time.Time, holiday, weekend bool, flags *flagSet, tr *trace) {
	startAt, _ := z.resolve(in.start)
	endAt, _ := z.resolve(in.end)
	// One allocation for the three times the event points to.
	times := &struct{ start, end, rounded time.Time }{start: time.Unix(startAt, 0).UTC(), end: time.Unix(endAt, 0).UTC()}
	st, en := times.start, times.end
	ev.ShiftStart, ev.ShiftEnd = &times.start, &times.end

	// Rounding, in site wall time.
	var rule RoundRule
	switch ev.Direction {
	case proto.DirectionIn:
		rule = s.Rounding.In
	case proto.DirectionOut:
		rule = s.Rounding.Out
	}
	payW := w
	pay := occurred
	if rule.Unit > 0 {
		payW = rule.apply(w)
		pay = occurred.Add(time.Duration(payW-w) * time.Second)
		times.rounded = pay
		ev.RoundedAt = &times.rounded
		if payW != w {
			*flags |= fRounded
		}
		if tr != nil {
			tr.add("rounding", "%s rounded %s to %v: %s → %s", ev.Direction, rule.Mode, time.Duration(rule.Unit)*time.Second, formatWall(w), formatWall(payW))
		}
	}
	var working bool
	if s.Days != nil {
		working = s.Days[weekday(in.day)]
	} else {
		working = !weekend
	}
	if holiday || !working {
		if !working {
			*flags |= fOffDay
		}
		if tr != nil {
			tr.add("payroll", "%s is not a working day of shift %s: no late, early-leave or overtime minutes (the daily summary decides what the hours are worth)", ev.WorkDate, s.Name)
		}
		return
	}

	minutes := func(d time.Duration) int { return int(d / time.Minute) }
	switch ev.Direction {
	case proto.DirectionIn:
		late := pay.Sub(st)
		if late > time.Duration(s.LateGrace)*time.Second && minutes(late) > 0 {
			ev.LateMinutes = minutes(late)
			*flags |= fLate
		}
		if tr != nil {
			if ev.LateMinutes > 0 {
				tr.add("late", "in at %s, shift starts %s, grace %v: %d minutes late (flag late)", utc(pay.Unix()), st.Format(time.RFC3339), time.Duration(s.LateGrace)*time.Second, ev.LateMinutes)
			} else {
				tr.add("late", "in at %s, shift starts %s, grace %v: on time", utc(pay.Unix()), st.Format(time.RFC3339), time.Duration(s.LateGrace)*time.Second)
			}
		}
	case proto.DirectionBreakIn:
		base := in.day * secondsPerDay
		for i := len(s.Breaks) - 1; i >= 0; i-- {
			b := s.Breaks[i]
			if w < base+b.Start {
				continue
			}
			endB, _ := z.resolve(base + b.End)
			over := pay.Sub(time.Unix(endB, 0))
			if over > time.Duration(s.LateGrace)*time.Second && minutes(over) > 0 {
				ev.LateMinutes = minutes(over)
				*flags |= fLate
			}
			if tr != nil {
				tr.add("late", "back from %s (ends %s) at %s: %d minutes late", b.Name, formatWall(base+b.End), formatWall(payW), ev.LateMinutes)
			}
			break
		}
	case proto.DirectionOut:
		early := en.Sub(pay)
		if early > time.Duration(s.EarlyLeaveGrace)*time.Second && minutes(early) > 0 {
			ev.EarlyLeaveMinutes = minutes(early)
			*flags |= fEarlyLeave
		}
		over := pay.Sub(en)
		if over > 0 && over >= time.Duration(s.OvertimeMin)*time.Second && minutes(over) > 0 {
			ev.OvertimeMinutes = minutes(over)
			*flags |= fOvertime
		}
		if tr != nil {
			tr.add("early/overtime", "out at %s, shift ends %s (early-leave grace %v, overtime from %v after end): early leave %d min, overtime %d min",
				utc(pay.Unix()), en.Format(time.RFC3339), time.Duration(s.EarlyLeaveGrace)*time.Second, time.Duration(s.OvertimeMin)*time.Second,
				ev.EarlyLeaveMinutes, ev.OvertimeMinutes)
		}
	}
}

func utc(sec int64) string { return time.Unix(sec, 0).UTC().Format(time.RFC3339) }

// yearOf returns the civil year, month and day of wall-clock seconds.
func yearOf(wall int64) (int, int, int) {
	return civilFromDays(floorDiv(wall, secondsPerDay))
}
