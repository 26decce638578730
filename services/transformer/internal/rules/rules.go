// Package rules is the transformer's pure core: a raw punch plus the payroll
// rules and the roster yields a clean attendance event or a rejection, and a
// raw business record plus its source mapping yields a clean record or a
// rejection. It does no I/O (Load aside, which only reads the file).
//
// The rules file is YAML; see Parse for the shape and README for an example.
package rules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/punchflow/punchflow/proto"
)

// DirectionAuto in a state map means "decide by the shift window": the
// punch is an in, out, break_out or break_in by where it falls in the
// assigned shift.
const DirectionAuto = "auto"

// Rules are the parsed rules file. A Rules value is immutable after Parse and
// safe for concurrent use.
type Rules struct {
	// Version is the first 12 hex characters of the SHA-256 of the file,
	// stamped on every output as its rules version.
	Version string
	// DefaultZone applies to sites that are not listed; nil rejects them.
	DefaultZone *time.Location
	Sites       map[string]*Site
	// States maps punch state codes to directions for devices of no listed
	// model. Codes it does not map are decided by the shift window and
	// flagged "unknown_state".
	States map[int]string
	// Models are device models with their own state mapping (an overlay on
	// States), matched by Devices or by serial prefix.
	Models  map[string]*Model
	Devices map[string]*Device
	Shifts  map[string]*Shift
	// Calendars are the holiday calendars by name.
	Calendars   map[string]*Calendar
	Assignments Assignments
	// Rounding is the default rounding of punch times; a shift may override
	// it per direction.
	Rounding Rounding
	// Records maps raw business records per source.
	Records map[string]*RecordMapping
	// EarliestYear rejects punches dated before it (a device with a reset clock).
	EarliestYear int
	// MaxFuture rejects punches further than this ahead of their collection time.
	MaxFuture time.Duration
	// ClockCorrectAbove: a punch whose collector-measured clock offset
	// exceeds it in magnitude is moved back by the offset (flag
	// "clock_corrected"). Zero never corrects.
	ClockCorrectAbove time.Duration

	defaultStates [256]string
	prefixes      []prefixModel
	defaultTab    *zoneTable
	zones         sync.Map // zone name → *zoneTable, for zones named by punches
	personShift   map[string]*Shift
	deptShift     map[string]*Shift
	defaultShift  *Shift
	dates         [datesCached]atomic.Pointer[cachedDate]
}

// Site is one site's settings.
type Site struct {
	Name     string
	Zone     *time.Location
	ZoneName string
	// Weekend marks the site's weekend days (default Saturday and Sunday).
	Weekend [7]bool
	// Holidays are the site's holiday calendars merged.
	Holidays  *Calendar
	Calendars []string
	// Shift is the site's default shift, if any.
	Shift string
	shift *Shift
	tab   *zoneTable
}

// Calendar is a set of holidays: fixed dates and dates that recur every year.
type Calendar struct {
	Name   string
	dates  map[int64]string // day number → holiday name
	yearly map[int]string   // month*100+day → holiday name
}

// Holiday returns the holiday's name on a day number, if it is one.
func (c *Calendar) holiday(day int64) (string, bool) {
	if c == nil {
		return "", false
	}
	if n, ok := c.dates[day]; ok {
		return n, true
	}
	if len(c.yearly) > 0 {
		_, m, d := civilFromDays(day)
		if n, ok := c.yearly[m*100+d]; ok {
			return n, true
		}
	}
	return "", false
}

// Len is the number of holidays in the calendar.
func (c *Calendar) Len() int { return len(c.dates) + len(c.yearly) }

// Model is a device model's punch-state mapping.
type Model struct {
	Name           string
	SerialPrefixes []string
	states         [256]string
}

// State returns the direction a state code maps to ("" when unmapped).
func (m *Model) State(code int) string { return m.states[code&255] }

type prefixModel struct {
	prefix string
	model  *Model
}

// Device is a device listed by serial: its model and, optionally, the time
// zone its clock runs on (overriding the punch's and the site's).
type Device struct {
	Serial   string
	Model    *Model
	Zone     *time.Location
	ZoneName string
	tab      *zoneTable
}

// Shift is a shift template. Times are seconds from midnight of the day the
// shift starts; End > Start, and End > 86400 for an overnight shift.
type Shift struct {
	Name       string
	Start, End int64
	// LateGrace: an in punch up to this long after Start is not late.
	LateGrace int64
	// EarlyLeaveGrace: an out punch up to this long before End is not an
	// early leave.
	EarlyLeaveGrace int64
	// EarliestPunch and LatestPunch bound the valid punches of one shift
	// instance: from Start-EarliestPunch to End+LatestPunch.
	EarliestPunch, LatestPunch int64
	// OvertimeMin: an out punch at least this long after End counts as
	// overtime (all of it, from End).
	OvertimeMin int64
	Breaks      []Break
	// Days are the days the shift is worked; nil means the site's days
	// that are not weekend days.
	Days     *[7]bool
	Rounding Rounding
}

// Overnight reports whether the shift crosses midnight.
func (s *Shift) Overnight() bool { return s.End > secondsPerDay }

// Break is a break inside a shift, in seconds from midnight of the day the
// shift starts.
type Break struct {
	Name       string
	Start, End int64
}

// Rounding rounds punch times per direction.
type Rounding struct {
	In, Out RoundRule
}

// RoundRule rounds a wall clock to a multiple of Unit seconds since local
// midnight; Unit 0 leaves it alone.
type RoundRule struct {
	Unit int64
	// Mode is "up", "down" or "nearest".
	Mode string
}

func (r RoundRule) apply(wall int64) int64 {
	if r.Unit <= 0 {
		return wall
	}
	day := floorDiv(wall, secondsPerDay) * secondsPerDay
	s := wall - day
	lo := s / r.Unit * r.Unit
	switch r.Mode {
	case "up":
		if lo != s {
			lo += r.Unit
		}
	case "nearest":
		if s-lo >= r.Unit-(s-lo) && s != lo {
			lo += r.Unit
		}
	}
	return day + lo
}

// Assignments choose a shift for a person when the roster entry names none:
// by person id, then by department, then the site's default, then Default.
type Assignments struct {
	Persons     map[string]string
	Departments map[string]string
	Default     string
}

// DefaultStates is the punch-state mapping of the common ZKTeco firmware:
// 0 check-in, 1 check-out, 2 break-out, 3 break-in, 4 overtime-in,
// 5 overtime-out, and 255 (no state, common on face terminals) decided by
// the shift window.
func DefaultStates() map[int]string {
	return map[int]string{
		0: proto.DirectionIn, 1: proto.DirectionOut,
		2: proto.DirectionBreakOut, 3: proto.DirectionBreakIn,
		4: proto.DirectionIn, 5: proto.DirectionOut,
		255: DirectionAuto,
	}
}

// file is the YAML shape of a rules file.
type file struct {
	DefaultTimeZone string                       `yaml:"default_time_zone"`
	EarliestYear    int                          `yaml:"earliest_year"`
	MaxFuture       string                       `yaml:"max_future"`
	Clock           clockFile                    `yaml:"clock"`
	States          map[string]string            `yaml:"states"`
	Models          map[string]modelFile         `yaml:"models"`
	Devices         map[string]deviceFile        `yaml:"devices"`
	Holidays        map[string]map[string]string `yaml:"holidays"`
	Sites           map[string]siteFile          `yaml:"sites"`
	Shifts          map[string]shiftFile         `yaml:"shifts"`
	Assignments     assignmentsFile              `yaml:"assignments"`
	Rounding        roundingFile                 `yaml:"rounding"`
	Records         map[string]recordFile        `yaml:"records"`
}

type clockFile struct {
	CorrectAbove string `yaml:"correct_above"`
}

type modelFile struct {
	SerialPrefixes []string          `yaml:"serial_prefixes"`
	States         map[string]string `yaml:"states"`
}

type deviceFile struct {
	Model    string `yaml:"model"`
	TimeZone string `yaml:"time_zone"`
}

type siteFile struct {
	TimeZone string    `yaml:"time_zone"`
	Holidays []string  `yaml:"holidays"`
	Weekend  *[]string `yaml:"weekend"`
	Shift    string    `yaml:"shift"`
}

type shiftFile struct {
	Start           string       `yaml:"start"`
	End             string       `yaml:"end"`
	LateGrace       string       `yaml:"late_grace"`
	EarlyLeaveGrace string       `yaml:"early_leave_grace"`
	EarliestPunch   string       `yaml:"earliest_punch"`
	LatestPunch     string       `yaml:"latest_punch"`
	OvertimeMin     string       `yaml:"overtime_min"`
	Breaks          []breakFile  `yaml:"breaks"`
	Days            []string     `yaml:"days"`
	Rounding        roundingFile `yaml:"rounding"`
}

type breakFile struct {
	Name  string `yaml:"name"`
	Start string `yaml:"start"`
	End   string `yaml:"end"`
}

type roundingFile struct {
	In  *roundFile `yaml:"in"`
	Out *roundFile `yaml:"out"`
}

type roundFile struct {
	Unit string `yaml:"unit"`
	Mode string `yaml:"mode"`
}

type assignmentsFile struct {
	DefaultShift string            `yaml:"default_shift"`
	Departments  map[string]string `yaml:"departments"`
	Persons      map[string]string `yaml:"persons"`
}

// Default windows of a shift.
const (
	defaultEarliestPunch = 2 * 3600
	defaultLatestPunch   = 4 * 3600
)

// Load reads and parses a rules file.
func Load(path string) (*Rules, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	r, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("rules file %s: %w", path, err)
	}
	return r, nil
}

// parser collects errors with the line of the field they are about.
type parser struct {
	root yaml.Node
	errs []error
}

func (p *parser) errf(path []string, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("line %d: %s: %s", findLine(&p.root, path...), strings.Join(path, "."), fmt.Sprintf(format, args...)))
}

func (p *parser) zone(path []string, name, example string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil || name == "" || name == "Local" {
		p.errf(path, "%q is not an IANA time zone (for example %s)", name, example)
		return nil
	}
	return loc
}

// duration parses a non-negative duration; empty yields def.
func (p *parser) duration(path []string, s string, def int64) int64 {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		p.errf(path, "%q must be a duration such as 5m, 90s or 2h", s)
		return def
	}
	return int64(d / time.Second)
}

func (p *parser) clock(path []string, s string) int64 {
	v, err := parseClock(s)
	if err != nil {
		p.errf(path, "%v", err)
	}
	return v
}

func (p *parser) direction(path []string, dir string, allowAuto bool) bool {
	switch dir {
	case proto.DirectionIn, proto.DirectionOut, proto.DirectionBreakOut, proto.DirectionBreakIn, proto.DirectionUnknown:
		return true
	case DirectionAuto:
		if allowAuto {
			return true
		}
	}
	p.errf(path, "%q: use in, out, break_out, break_in, unknown or auto (decide by the shift window)", dir)
	return false
}

func (p *parser) stateMap(path []string, m map[string]string, into *[256]string) {
	for _, code := range sortedKeys(m) {
		n, err := strconv.Atoi(code)
		if err != nil || n < 0 || n > 255 {
			p.errf(append(path, code), "key %q must be a punch state code from 0 to 255", code)
			continue
		}
		if p.direction(append(path, code), m[code], true) {
			into[n] = m[code]
		}
	}
}

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func (p *parser) days(path []string, names []string) [7]bool {
	var d [7]bool
	for _, n := range names {
		w, ok := weekdays[strings.ToLower(n)]
		if !ok {
			p.errf(path, "%q is not a day of the week (monday ... sunday)", n)
			continue
		}
		d[w] = true
	}
	return d
}

func (p *parser) rounding(path []string, f roundingFile, def Rounding) Rounding {
	r := def
	one := func(name string, rf *roundFile, into *RoundRule) {
		if rf == nil {
			return
		}
		pp := append(append([]string(nil), path...), name)
		unit := p.duration(append(pp, "unit"), rf.Unit, 0)
		if unit <= 0 || unit > 3600 {
			p.errf(append(pp, "unit"), "%q must be a duration from 1s to 1h, such as 15m", rf.Unit)
		}
		switch rf.Mode {
		case "up", "down", "nearest":
		default:
			p.errf(append(pp, "mode"), "%q: use up, down or nearest", rf.Mode)
		}
		*into = RoundRule{Unit: unit, Mode: rf.Mode}
	}
	one("in", f.In, &r.In)
	one("out", f.Out, &r.Out)
	return r
}

// Parse parses and validates a rules file. Errors name the line and the
// field to fix; unknown fields are errors, so a typo is never ignored.
//
// The file's top-level keys: default_time_zone, earliest_year, max_future,
// clock.correct_above, states, models, devices, holidays, sites, shifts,
// assignments, rounding, records. Only a time zone (default_time_zone or a
// site's) is required.
func Parse(data []byte) (*Rules, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not a valid rules file: %w", err)
	}
	p := &parser{}
	_ = yaml.Unmarshal(data, &p.root)

	sum := sha256.Sum256(data)
	r := &Rules{
		Version:      hex.EncodeToString(sum[:])[:12],
		Sites:        map[string]*Site{},
		States:       DefaultStates(),
		Models:       map[string]*Model{},
		Devices:      map[string]*Device{},
		Shifts:       map[string]*Shift{},
		Calendars:    map[string]*Calendar{},
		Records:      map[string]*RecordMapping{},
		EarliestYear: 2000,
		MaxFuture:    24 * time.Hour,
	}
	tables := map[*time.Location]*zoneTable{}
	table := func(loc *time.Location) *zoneTable {
		if tab, ok := tables[loc]; ok {
			return tab
		}
		tables[loc] = newZoneTable(loc)
		return tables[loc]
	}
	if f.DefaultTimeZone != "" {
		if r.DefaultZone = p.zone([]string{"default_time_zone"}, f.DefaultTimeZone, "Europe/Berlin"); r.DefaultZone != nil {
			r.defaultTab = table(r.DefaultZone)
		}
	}
	if f.EarliestYear != 0 {
		if f.EarliestYear < 1970 || f.EarliestYear > 2100 {
			p.errf([]string{"earliest_year"}, "%d must be between 1970 and 2100", f.EarliestYear)
		}
		r.EarliestYear = f.EarliestYear
	}
	if f.MaxFuture != "" {
		r.MaxFuture = time.Duration(p.duration([]string{"max_future"}, f.MaxFuture, 86400)) * time.Second
	}
	r.ClockCorrectAbove = time.Duration(p.duration([]string{"clock", "correct_above"}, f.Clock.CorrectAbove, 0)) * time.Second

	// States: the default map, then models as overlays on it.
	if len(f.States) > 0 {
		r.States = map[int]string{}
		var m [256]string
		p.stateMap([]string{"states"}, f.States, &m)
		for code, dir := range m {
			if dir != "" {
				r.States[code] = dir
			}
		}
	}
	for code, dir := range r.States {
		r.defaultStates[code] = dir
	}
	for _, name := range sortedKeys(f.Models) {
		mf := f.Models[name]
		m := &Model{Name: name, SerialPrefixes: mf.SerialPrefixes, states: r.defaultStates}
		p.stateMap([]string{"models", name, "states"}, mf.States, &m.states)
		for _, pre := range mf.SerialPrefixes {
			if pre == "" {
				p.errf([]string{"models", name, "serial_prefixes"}, "an empty prefix would match every device")
				continue
			}
			for _, other := range r.prefixes {
				if other.prefix == pre {
					p.errf([]string{"models", name, "serial_prefixes"}, "prefix %q is also listed for model %s", pre, other.model.Name)
				}
			}
			r.prefixes = append(r.prefixes, prefixModel{pre, m})
		}
		r.Models[name] = m
	}
	sort.SliceStable(r.prefixes, func(i, j int) bool { return len(r.prefixes[i].prefix) > len(r.prefixes[j].prefix) })
	for _, serial := range sortedKeys(f.Devices) {
		df := f.Devices[serial]
		d := &Device{Serial: serial}
		if df.Model != "" {
			if d.Model = r.Models[df.Model]; d.Model == nil {
				p.errf([]string{"devices", serial, "model"}, "model %q is not listed under models", df.Model)
			}
		}
		if df.TimeZone != "" {
			if d.Zone = p.zone([]string{"devices", serial, "time_zone"}, df.TimeZone, "Asia/Kolkata"); d.Zone != nil {
				d.ZoneName, d.tab = df.TimeZone, table(d.Zone)
			}
		}
		r.Devices[serial] = d
	}

	// Holiday calendars.
	for _, name := range sortedKeys(f.Holidays) {
		c := &Calendar{Name: name, dates: map[int64]string{}, yearly: map[int]string{}}
		for _, date := range sortedKeys(f.Holidays[name]) {
			path := []string{"holidays", name, date}
			label := f.Holidays[name][date]
			if label == "" {
				label = "holiday"
			}
			if t, err := time.Parse(time.DateOnly, date); err == nil && len(date) == 10 {
				c.dates[daysFromCivil(t.Year(), int(t.Month()), t.Day())] = label
			} else if t, err := time.Parse("01-02", date); err == nil && len(date) == 5 {
				c.yearly[int(t.Month())*100+t.Day()] = label
			} else {
				p.errf(path, "%q must be a date as YYYY-MM-DD, or MM-DD for a holiday every year", date)
			}
		}
		r.Calendars[name] = c
	}

	// Shifts.
	for _, name := range sortedKeys(f.Shifts) {
		r.Shifts[name] = p.shift(name, f.Shifts[name], r)
	}
	r.Rounding = p.rounding([]string{"rounding"}, f.Rounding, Rounding{})
	for _, s := range r.Shifts {
		s.Rounding = p.rounding([]string{"shifts", s.Name, "rounding"}, f.Shifts[s.Name].Rounding, r.Rounding)
	}
	shiftRef := func(path []string, name string) {
		if name != "" && r.Shifts[name] == nil {
			p.errf(path, "shift %q is not listed under shifts", name)
		}
	}

	// Sites.
	for _, name := range sortedKeys(f.Sites) {
		sf := f.Sites[name]
		if sf.TimeZone == "" {
			p.errf([]string{"sites", name}, "time_zone is required")
			continue
		}
		loc := p.zone([]string{"sites", name, "time_zone"}, sf.TimeZone, "Asia/Kolkata")
		if loc == nil {
			continue
		}
		s := &Site{Name: name, Zone: loc, ZoneName: sf.TimeZone, Calendars: sf.Holidays, Shift: sf.Shift, tab: table(loc)}
		s.Weekend[time.Saturday], s.Weekend[time.Sunday] = true, true
		if sf.Weekend != nil {
			s.Weekend = p.days([]string{"sites", name, "weekend"}, *sf.Weekend)
		}
		merged := &Calendar{Name: name, dates: map[int64]string{}, yearly: map[int]string{}}
		for _, cn := range sf.Holidays {
			c, ok := r.Calendars[cn]
			if !ok {
				p.errf([]string{"sites", name, "holidays"}, "calendar %q is not listed under holidays", cn)
				continue
			}
			for k, v := range c.dates {
				merged.dates[k] = v
			}
			for k, v := range c.yearly {
				merged.yearly[k] = v
			}
		}
		if merged.Len() > 0 {
			s.Holidays = merged
		}
		shiftRef([]string{"sites", name, "shift"}, sf.Shift)
		s.shift = r.Shifts[sf.Shift]
		r.Sites[name] = s
	}
	r.Assignments = Assignments{Persons: f.Assignments.Persons, Departments: f.Assignments.Departments, Default: f.Assignments.DefaultShift}
	shiftRef([]string{"assignments", "default_shift"}, r.Assignments.Default)
	r.defaultShift = r.Shifts[r.Assignments.Default]
	r.deptShift, r.personShift = map[string]*Shift{}, map[string]*Shift{}
	for _, k := range sortedKeys(r.Assignments.Departments) {
		shiftRef([]string{"assignments", "departments", k}, r.Assignments.Departments[k])
		r.deptShift[k] = r.Shifts[r.Assignments.Departments[k]]
	}
	for _, k := range sortedKeys(r.Assignments.Persons) {
		shiftRef([]string{"assignments", "persons", k}, r.Assignments.Persons[k])
		r.personShift[k] = r.Shifts[r.Assignments.Persons[k]]
	}

	// Business records.
	for _, src := range sortedKeys(f.Records) {
		r.Records[src] = p.record(src, f.Records[src])
	}

	if r.DefaultZone == nil && len(r.Sites) == 0 && len(p.errs) == 0 {
		p.errs = append(p.errs, errors.New("no time zone at all: set default_time_zone or list sites with their time_zone"))
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return r, nil
}

func (p *parser) shift(name string, sf shiftFile, r *Rules) *Shift {
	path := func(k ...string) []string { return append([]string{"shifts", name}, k...) }
	s := &Shift{Name: name}
	if sf.Start == "" || sf.End == "" {
		p.errf(path(), "start and end are required (hh:mm)")
		return s
	}
	s.Start = p.clock(path("start"), sf.Start)
	s.End = p.clock(path("end"), sf.End)
	if s.End == s.Start {
		p.errf(path("end"), "equals start: a shift must last less than 24h")
	}
	if s.End <= s.Start {
		s.End += secondsPerDay // overnight: ends the next day
	}
	s.LateGrace = p.duration(path("late_grace"), sf.LateGrace, 0)
	s.EarlyLeaveGrace = p.duration(path("early_leave_grace"), sf.EarlyLeaveGrace, 0)
	s.EarliestPunch = p.duration(path("earliest_punch"), sf.EarliestPunch, defaultEarliestPunch)
	s.LatestPunch = p.duration(path("latest_punch"), sf.LatestPunch, defaultLatestPunch)
	s.OvertimeMin = p.duration(path("overtime_min"), sf.OvertimeMin, 0)
	length := s.End - s.Start
	if s.LateGrace >= length || s.EarlyLeaveGrace >= length {
		p.errf(path(), "late_grace and early_leave_grace must be shorter than the shift")
	}
	if w := s.EarliestPunch + length + s.LatestPunch; w > secondsPerDay {
		p.errf(path(), "earliest_punch + shift + latest_punch is %s; it must be at most 24h so that one day's punches belong to one shift",
			time.Duration(w)*time.Second)
	}
	if sf.Days != nil {
		d := p.days(path("days"), sf.Days)
		s.Days = &d
	}
	for i, bf := range sf.Breaks {
		bp := path("breaks")
		b := Break{Name: bf.Name, Start: p.clock(bp, bf.Start), End: p.clock(bp, bf.End)}
		if b.Name == "" {
			b.Name = fmt.Sprintf("break %d", i+1)
		}
		if b.Start < s.Start {
			b.Start += secondsPerDay
		}
		for b.End <= b.Start {
			b.End += secondsPerDay
		}
		if b.Start < s.Start || b.End > s.End {
			p.errf(bp, "%s (%s-%s) must lie inside the shift (%s-%s)", b.Name, bf.Start, bf.End, formatClock(s.Start), formatClock(s.End))
		}
		if n := len(s.Breaks); n > 0 && b.Start < s.Breaks[n-1].End {
			p.errf(bp, "%s overlaps or precedes %s: list breaks in order", b.Name, s.Breaks[n-1].Name)
		}
		s.Breaks = append(s.Breaks, b)
	}
	return s
}

// findLine returns the line of the node at path in a YAML document, or the
// closest ancestor's line, or 0.
func findLine(n *yaml.Node, path ...string) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	best := n.Line
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return best
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				best = n.Content[i].Line
				n = n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			return best
		}
	}
	return best
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
