package rules

import (
	"fmt"
	"time"

	"github.com/punchflow/punchflow/proto"
)

// Rejection reason codes specific to the rules (proto.ReasonInvalid covers
// contract violations).
const (
	RejectUnknownSite = "unknown_site"
	RejectBadTime     = "bad_time"
	RejectTooOld      = "too_old"
	RejectInFuture    = "in_future"
)

// Flags an event may carry.
const (
	FlagDSTGap       = "dst_gap"
	FlagDSTOverlap   = "dst_overlap"
	FlagUnknownState = "unknown_state"
	FlagDefaultZone  = "default_zone"
)

// Rejection says why a punch cannot become an attendance event. It is a
// permanent failure: the punch goes to the dead-letter stream with Code.
type Rejection struct {
	Code    string
	Message string
}

func (r *Rejection) Error() string { return r.Code + ": " + r.Message }

// Apply turns a validated raw punch into an attendance event under r. The
// event's id is proto.CleanID(p.ID, r.Version); ProcessedAt is left for the
// caller. It returns a *Rejection when the punch breaks the rules.
func (r *Rules) Apply(p proto.RawPunch, lin proto.Lineage) (proto.AttendanceEvent, error) {
	var flags []string
	zone, zoneName, err := r.zoneFor(p.Site)
	if err != nil {
		return proto.AttendanceEvent{}, err
	}
	if zoneName == "" {
		flags = append(flags, FlagDefaultZone)
		zoneName = zone.String()
	}
	wall, err := proto.ParseLocalTime(p.DeviceTime)
	if err != nil {
		return proto.AttendanceEvent{}, &Rejection{Code: RejectBadTime, Message: err.Error()}
	}
	if wall.Year() < r.EarliestYear {
		return proto.AttendanceEvent{}, &Rejection{Code: RejectTooOld,
			Message: fmt.Sprintf("device time %s is before %d: check the device clock", p.DeviceTime, r.EarliestYear)}
	}
	at, resolution := Resolve(wall, zone)
	if resolution != "" {
		flags = append(flags, resolution)
	}
	if !p.CollectedAt.IsZero() && at.Sub(p.CollectedAt) > r.MaxFuture {
		return proto.AttendanceEvent{}, &Rejection{Code: RejectInFuture,
			Message: fmt.Sprintf("device time %s (%s) is %v after it was collected: check the device clock", p.DeviceTime, zoneName, at.Sub(p.CollectedAt).Round(time.Second))}
	}
	dir, ok := r.States[p.State]
	if !ok {
		dir = proto.DirectionUnknown
		flags = append(flags, FlagUnknownState)
	}
	lin.RawID = p.ID
	if lin.RunID == "" {
		lin.RunID = p.RunID
	}
	return proto.AttendanceEvent{
		ID:            proto.CleanID(p.ID, r.Version),
		SchemaVersion: proto.SchemaVersion,
		RulesVersion:  r.Version,
		Site:          p.Site,
		DeviceSerial:  p.DeviceSerial,
		UserID:        p.UserID,
		OccurredAt:    at.UTC(),
		DeviceTime:    p.DeviceTime,
		TimeZone:      zoneName,
		Direction:     dir,
		State:         p.State,
		VerifyMode:    p.VerifyMode,
		WorkDate:      wall.Format(time.DateOnly),
		Flags:         flags,
		Lineage:       lin,
	}, nil
}

// zoneFor returns the site's zone and name, or the default zone with an
// empty name.
func (r *Rules) zoneFor(site string) (*time.Location, string, error) {
	if s, ok := r.Sites[site]; ok {
		return s.Zone, s.Zone.String(), nil
	}
	if r.DefaultZone != nil {
		return r.DefaultZone, "", nil
	}
	return nil, "", &Rejection{Code: RejectUnknownSite,
		Message: fmt.Sprintf("site %q is not in the rules file and there is no default_time_zone: add it under sites", site)}
}

// Resolve interprets a zone-less wall clock in loc deterministically. A wall
// clock that exists once maps to that instant. One that falls in a
// daylight-saving gap (it never happened) maps to the instant the same wall
// clock denotes under the offset in force before the gap, which lies after
// the gap, and is flagged FlagDSTGap. One that happened twice (the hour
// repeated when clocks go back) maps to the earlier instant and is flagged
// FlagDSTOverlap.
func Resolve(wall time.Time, loc *time.Location) (time.Time, string) {
	naive := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), wall.Nanosecond(), time.UTC)
	_, before := naive.Add(-24 * time.Hour).In(loc).Zone()
	_, after := naive.Add(24 * time.Hour).In(loc).Zone()
	c1 := naive.Add(-time.Duration(before) * time.Second)
	c2 := naive.Add(-time.Duration(after) * time.Second)
	ok1, ok2 := sameWall(c1, loc, naive), sameWall(c2, loc, naive)
	switch {
	case ok1 && ok2 && !c1.Equal(c2):
		if c2.Before(c1) {
			c1 = c2
		}
		return c1, FlagDSTOverlap
	case ok1:
		return c1, ""
	case ok2:
		return c2, ""
	default:
		return c1, FlagDSTGap
	}
}

func sameWall(instant time.Time, loc *time.Location, naive time.Time) bool {
	l := instant.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC).Equal(naive)
}
