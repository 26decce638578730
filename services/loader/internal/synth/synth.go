// Package synth generates deterministic clean attendance events and
// business records for the loader's tests and benchmarks: a workforce that
// punches in and out at several sites in several time zones, with double
// punches and late arrivals, in the order a stream delivers them.
package synth

import (
	"fmt"
	"time"

	"github.com/punchflow/punchflow/proto"
)

// Site is a site of the generated workforce.
type Site struct {
	Name string
	Zone string
}

// Config describes a workforce. The zero value of a field takes the
// default given with it.
type Config struct {
	// Users is the number of device users (default 1000). User u works at
	// site u mod len(Sites).
	Users int
	// PunchesPerDay is how many punches a user makes a day (default 4:
	// in, out for a break, in, out).
	PunchesPerDay int
	// Sites (default hq in Asia/Singapore, plant-2 in Europe/Berlin, depot
	// in America/New_York).
	Sites []Site
	// FirstDay is the first work date (default 2024-03-25, so that Berlin
	// and New York cross a daylight-saving change).
	FirstDay time.Time
	// DoubleEvery makes every n-th event a double punch: the user's previous
	// punch again, 20 seconds later (default 0: none).
	DoubleEvery int
	// RulesVersion is stamped on every event (default "rules-synth").
	RulesVersion string
}

func (c Config) withDefaults() Config {
	if c.Users <= 0 {
		c.Users = 1000
	}
	if c.PunchesPerDay <= 0 {
		c.PunchesPerDay = 4
	}
	if len(c.Sites) == 0 {
		c.Sites = []Site{{"hq", "Asia/Singapore"}, {"plant-2", "Europe/Berlin"}, {"depot", "America/New_York"}}
	}
	if c.FirstDay.IsZero() {
		c.FirstDay = time.Date(2024, 3, 25, 0, 0, 0, 0, time.UTC)
	}
	if c.RulesVersion == "" {
		c.RulesVersion = "rules-synth"
	}
	return c
}

// Generator makes events and records. It is not safe for concurrent use.
type Generator struct {
	c     Config
	zones []*time.Location
}

// New returns a generator for c. It panics when a site's zone does not
// load, which is a mistake in the caller's code.
func New(c Config) *Generator {
	c = c.withDefaults()
	g := &Generator{c: c}
	for _, s := range c.Sites {
		loc, err := time.LoadLocation(s.Zone)
		if err != nil {
			panic(fmt.Sprintf("synth: site %s: %v", s.Name, err))
		}
		g.zones = append(g.zones, loc)
	}
	return g
}

// Event returns the k-th event (k from 0). Events come day by day; within a
// day, slot by slot (every user's first punch, then every user's second);
// so consecutive events belong to different users, as a stream of many
// devices delivers them. Its CLEAN-side lineage says raw sequence k+1.
func (g *Generator) Event(k int) proto.AttendanceEvent {
	c := g.c
	perDay := c.Users * c.PunchesPerDay
	day, slot, user := k/perDay, (k%perDay)/c.Users, k%c.Users
	double := c.DoubleEvery > 0 && k%c.DoubleEvery == 0 && slot > 0
	if double {
		slot--
	}
	site := user % len(c.Sites)
	loc := g.zones[site]
	date := c.FirstDay.AddDate(0, 0, day)
	// Punches from 08:00 to 17:00 local, evenly; users arrive between 10
	// minutes early and 29 minutes late.
	span := 9 * time.Hour
	if c.PunchesPerDay > 1 {
		span /= time.Duration(c.PunchesPerDay - 1)
	}
	local := time.Date(date.Year(), date.Month(), date.Day(), 8, 0, 0, 0, loc).
		Add(time.Duration(slot) * span).
		Add(time.Duration(user*7%40-10) * time.Minute)
	if double {
		local = local.Add(20 * time.Second)
	}
	direction, state := proto.DirectionIn, 0
	if slot%2 == 1 {
		direction, state = proto.DirectionOut, 1
	}
	userID := fmt.Sprintf("%05d", user)
	device := fmt.Sprintf("%s-DEV%02d", c.Sites[site].Name, user%3)
	deviceTime := local.Format(proto.LocalTimeLayout)
	rawID := proto.PunchID(device, userID, deviceTime, state)
	e := proto.AttendanceEvent{
		ID:            proto.CleanID(rawID, c.RulesVersion),
		SchemaVersion: proto.SchemaVersion,
		RulesVersion:  c.RulesVersion,
		Site:          c.Sites[site].Name,
		DeviceSerial:  device,
		UserID:        userID,
		OccurredAt:    local.UTC(),
		DeviceTime:    deviceTime,
		TimeZone:      c.Sites[site].Zone,
		Direction:     direction,
		State:         state,
		VerifyMode:    1,
		WorkDate:      date.Format(time.DateOnly),
		Lineage: proto.Lineage{
			RawID:       rawID,
			RawSubject:  proto.RawPunchSubject(c.Sites[site].Name, device),
			RawStream:   "RAW",
			RawSequence: uint64(k + 1),
			RunID:       fmt.Sprintf("run-%d", day),
		},
		ProcessedAt: local.UTC().Add(time.Second),
	}
	if user%5 != 0 {
		e.PersonID = "person-" + userID
		e.Department = fmt.Sprintf("dept-%d", user%4)
		e.RosterVersion = "roster-1"
	}
	if user%7 == 0 {
		e.Flags = []string{"unknown_user"}
	}
	if site == 0 {
		// The first site's punches carry the transformer's shift: 08:00 to
		// 17:00 local, five minutes' grace.
		start := time.Date(date.Year(), date.Month(), date.Day(), 8, 0, 0, 0, loc)
		end := time.Date(date.Year(), date.Month(), date.Day(), 17, 0, 0, 0, loc)
		startUTC, endUTC := start.UTC(), end.UTC()
		e.Shift, e.ShiftStart, e.ShiftEnd = "day", &startUTC, &endUTC
		switch {
		case direction == proto.DirectionIn && local.Sub(start) > 5*time.Minute:
			e.LateMinutes = int(local.Sub(start) / time.Minute)
		case direction == proto.DirectionOut && local.Before(end.Add(-5*time.Minute)):
			e.EarlyLeaveMinutes = int(end.Sub(local) / time.Minute)
		case direction == proto.DirectionOut && local.After(end):
			e.OvertimeMinutes = int(local.Sub(end) / time.Minute)
		}
	}
	if user%11 == 0 {
		rounded := local.UTC().Truncate(5 * time.Minute)
		e.RoundedAt = &rounded
	}
	if user%13 == 0 {
		e.ClockOffsetMS = 1500
		e.Flags = append(e.Flags, "clock_corrected")
	}
	return e
}

// Record returns the k-th business record of source: an order with typed
// fields (strings, a number, a boolean, a time) and its raw payload.
func (g *Generator) Record(source string, k int) proto.CleanRecord {
	at := g.c.FirstDay.Add(time.Duration(k) * time.Second).UTC()
	key := fmt.Sprintf("order-%07d", k)
	payload := fmt.Sprintf(`{"order_id":%q,"amount_cents":%d,"customer":{"id":"c-%d","name":"Customer %d"},"paid":%t,"created":%q,"lines":[{"sku":"sku-%d","qty":%d}]}`,
		key, 1000+k%9000, k%997, k%997, k%3 != 0, at.Format(time.RFC3339), k%50, 1+k%5)
	rawID := proto.RecordID(source, key, []byte(payload))
	r := proto.CleanRecord{
		ID:            proto.CleanID(rawID, g.c.RulesVersion),
		SchemaVersion: proto.SchemaVersion,
		RulesVersion:  g.c.RulesVersion,
		Source:        source,
		NaturalKey:    key,
		OccurredAt:    &at,
		Fields: map[string]any{
			"order_id":     key,
			"amount_cents": float64(1000 + k%9000),
			"paid":         k%3 != 0,
			"created":      at.Format(time.RFC3339),
		},
		Payload: []byte(payload),
		Lineage: proto.Lineage{
			RawID:       rawID,
			RawSubject:  proto.RawRecordSubject(source),
			RawStream:   "RAW",
			RawSequence: uint64(k + 1),
		},
		ProcessedAt: at.Add(time.Second),
	}
	return r
}
