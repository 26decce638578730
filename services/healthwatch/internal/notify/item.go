// Package notify is what healthwatch tells people and how it gets there:
// the items queued on the alerts stream (a state change, a report, a payroll
// escalation), the channel-neutral Message they are composed into, and
// Deliver, which sends a Message through a Sender with retries and backoff,
// honouring 429 Retry-After. Composition is pure; channels render Messages
// in their own formats.
package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
)

// Item types.
const (
	TypeAlert      = "alert"      // a condition raised or cleared
	TypeReport     = "report"     // a scheduled or on-demand report
	TypeEscalation = "escalation" // unsynced devices before a payroll cut-off
	TypeResend     = "resend"     // still-active alerts re-sent (Alertmanager)
)

// Item is one thing to tell, as queued on the alerts stream. Its ID is
// deterministic (the same transition or report slot gives the same id), so
// JetStream's de-duplication and the per-channel sent markers make it go
// out once however many replicas produce it.
type Item struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Teams   []string  `json:"teams"`
	Created time.Time `json:"created"`
	Event   *Event    `json:"event,omitempty"`
	Report  *Report   `json:"report,omitempty"`
}

// Event is a condition of a device raised or cleared.
type Event struct {
	Device    string       `json:"device"`
	Name      string       `json:"name,omitempty"`
	Site      string       `json:"site,omitempty"`
	Owner     string       `json:"owner,omitempty"`
	Condition health.State `json:"condition"`
	Resolved  bool         `json:"resolved"`
	At        time.Time    `json:"at"`
	// RaisedAt is when the condition was raised (= At for a raise).
	RaisedAt time.Time `json:"raised_at"`
	Detail   string    `json:"detail,omitempty"`
	// State is the device's state after the transition.
	State health.State `json:"state"`
}

// EventID is the id of the alert item for a transition of a device.
func EventID(serial string, c health.State, raised bool, at time.Time) string {
	dir := "cleared"
	if raised {
		dir = "raised"
	}
	return "alert-" + hashOf(serial, string(c), dir, at.UTC().Format(time.RFC3339Nano))
}

// NewEvent builds the event of transition t of device d.
func NewEvent(d health.Device, owner string, t health.Transition) Event {
	e := Event{Device: d.Serial, Name: d.Name, Site: d.Site, Owner: owner, Condition: t.Condition, Resolved: !t.Raised,
		At: t.At, RaisedAt: t.At, Detail: t.Detail, State: d.State}
	if !t.Raised {
		e.RaisedAt = t.RaisedAt
	}
	return e
}

// Report is a fleet report: counts per state and every device that needs
// attention, or, for an escalation, every device with unsynced data.
type Report struct {
	Kind   string       `json:"kind"` // "scheduled", "on_demand" or "escalation"
	Team   string       `json:"team,omitempty"`
	At     time.Time    `json:"at"`
	Zone   string       `json:"zone"`
	Counts []StateCount `json:"counts"`
	Total  int          `json:"total"`
	// Attention lists the devices that are not online (reports) or have
	// unsynced data (escalations), most severe first.
	Attention []DeviceLine `json:"attention"`
	// Cutoff and UnsyncedAfter are set on escalations.
	Cutoff        time.Time     `json:"cutoff,omitzero"`
	UnsyncedAfter time.Duration `json:"unsynced_after,omitempty"`
}

// StateCount is how many devices are in State.
type StateCount struct {
	State health.State `json:"state"`
	Count int          `json:"count"`
}

// DeviceLine is one device in a report.
type DeviceLine struct {
	Device         string       `json:"device"`
	Name           string       `json:"name,omitempty"`
	Site           string       `json:"site,omitempty"`
	State          health.State `json:"state"`
	Since          time.Time    `json:"since"`
	LastSyncAt     time.Time    `json:"last_sync_at,omitzero"`
	RecordsWaiting int          `json:"records_waiting"`
	Detail         string       `json:"detail,omitempty"`
}

// Report kinds.
const (
	KindScheduled  = "scheduled"
	KindOnDemand   = "on_demand"
	KindEscalation = "escalation"
)

// BuildReport summarises devices at now for team ("" for the whole fleet).
func BuildReport(kind, team string, devices []health.Device, now time.Time, loc *time.Location) Report {
	r := Report{Kind: kind, Team: team, At: now, Zone: loc.String(), Total: len(devices)}
	counts := map[health.State]int{}
	for _, d := range devices {
		counts[d.State]++
		if d.State != health.Online {
			r.Attention = append(r.Attention, line(d))
		}
	}
	for _, s := range health.States() {
		if counts[s] > 0 {
			r.Counts = append(r.Counts, StateCount{State: s, Count: counts[s]})
		}
	}
	sortLines(r.Attention)
	return r
}

// BuildEscalation lists, for team, the devices whose data may miss the
// payroll cut-off: never synced, not synced within unsyncedAfter, or with
// records known to be waiting.
func BuildEscalation(team string, devices []health.Device, cutoff time.Time, unsyncedAfter time.Duration, now time.Time, loc *time.Location) Report {
	r := BuildReport(KindEscalation, team, devices, now, loc)
	r.Cutoff, r.UnsyncedAfter, r.Attention = cutoff, unsyncedAfter, nil
	for _, d := range devices {
		if d.Unsynced(now, unsyncedAfter) {
			r.Attention = append(r.Attention, line(d))
		}
	}
	sortLines(r.Attention)
	return r
}

func line(d health.Device) DeviceLine {
	l := DeviceLine{Device: d.Serial, Name: d.Name, Site: d.Site, State: d.State, Since: d.StateSince,
		LastSyncAt: d.LastSyncAt, RecordsWaiting: d.RecordsWaiting()}
	if active := d.ActiveConditions(); len(active) > 0 {
		var parts []string
		for _, c := range active {
			if det := d.Conditions[c].Detail; det != "" {
				parts = append(parts, det)
			} else {
				parts = append(parts, c.Label())
			}
		}
		l.Detail = strings.Join(parts, "; ")
	}
	return l
}

func sortLines(ls []DeviceLine) {
	sort.SliceStable(ls, func(i, j int) bool {
		a, b := ls[i], ls[j]
		if a.State.Severity() != b.State.Severity() {
			return a.State.Severity() < b.State.Severity()
		}
		if a.Site != b.Site {
			return a.Site < b.Site
		}
		return a.Device < b.Device
	})
}

// ReportID is the id of the report item of team for the slot at.
func ReportID(kind, team string, at time.Time) string {
	return kind + "-" + hashOf(team, at.UTC().Format(time.RFC3339))
}

// EscalationID is the id of the escalation of team for cutoff, lead before.
func EscalationID(team string, cutoff time.Time, before time.Duration) string {
	return "escalation-" + hashOf(team, cutoff.UTC().Format(time.RFC3339), before.String())
}

func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}
