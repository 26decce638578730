// Package health turns device heartbeats into device states: online, slow,
// disconnected, unauthorized, storage nearly full, clock drift and never
// seen. It is pure (no I/O and no clock: callers pass the time), so every
// rule is table-tested.
//
// A device can have several conditions at once (slow and storage nearly
// full, say); each condition is raised and cleared on its own with
// hysteresis, and each raise or clear is a Transition that healthwatch turns
// into an alert or a resolved notice. The device's State is its most severe
// active condition, or Online; its History of State changes drives the
// status page's timelines.
package health

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/punchflow/punchflow/proto"
)

// State is a device state; every state but Online is also a condition that
// can be raised and cleared.
type State string

// The states, most severe first.
const (
	NeverSeen    State = "never_seen"   // configured, but no heartbeat yet
	Unauthorized State = "unauthorized" // the device rejected the comm key
	Disconnected State = "disconnected" // no contact for DisconnectedAfter intervals
	StorageFull  State = "storage_full" // attendance storage nearly full
	ClockDrift   State = "clock_drift"  // device clock off by more than the threshold
	Slow         State = "slow"         // high latency or partial failures
	Online       State = "online"
)

// States returns every state, most severe first, Online last.
func States() []State {
	return []State{NeverSeen, Unauthorized, Disconnected, StorageFull, ClockDrift, Slow, Online}
}

// Conditions returns the states that can be raised, most severe first.
func Conditions() []State { return States()[:6] }

// Valid reports whether s is one of States.
func (s State) Valid() bool { return slices.Contains(States(), s) }

// Label is the state in words, for people.
func (s State) Label() string {
	switch s {
	case NeverSeen:
		return "never seen"
	case StorageFull:
		return "storage nearly full"
	case ClockDrift:
		return "clock drift"
	}
	return string(s)
}

// Severity ranks s: 0 for the most severe, len(States())-1 for Online.
func (s State) Severity() int {
	if i := slices.Index(States(), s); i >= 0 {
		return i
	}
	return len(States())
}

// Thresholds are the rules one site's devices are judged by. Policy files
// set them per site; Defaults gives sensible values.
type Thresholds struct {
	// Interval is how often the collector is expected to reach each device.
	Interval time.Duration
	// DisconnectedAfter is how many intervals without contact (no session
	// that reached the device) make a device disconnected, and how many
	// intervals a configured device may stay unseen before never_seen is
	// raised.
	DisconnectedAfter int
	// SlowLatency: a session whose first round trip takes longer is slow.
	SlowLatency time.Duration
	// SlowFailureRatio: when more than this share of the last SlowWindow
	// sessions failed, the device is slow even if it answers quickly.
	SlowFailureRatio float64
	SlowWindow       int
	// StorageFull raises storage_full at this share of the attendance
	// capacity; it clears only below StorageClear (a band against flapping).
	StorageFull  float64
	StorageClear float64
	// ClockDrift raises clock_drift at this offset (either sign); it clears
	// only below ClockDriftClear.
	ClockDrift      time.Duration
	ClockDriftClear time.Duration
	// RaiseAfter consecutive bad heartbeats raise a condition, and
	// ClearAfter consecutive good ones clear it: the hysteresis that keeps a
	// flapping device from flooding anyone.
	RaiseAfter int
	ClearAfter int
}

// Defaults are the thresholds used where a policy sets none.
func Defaults() Thresholds {
	return Thresholds{
		Interval:          5 * time.Minute,
		DisconnectedAfter: 3,
		SlowLatency:       time.Second,
		SlowFailureRatio:  0.3,
		SlowWindow:        10,
		StorageFull:       0.9,
		StorageClear:      0.85,
		ClockDrift:        2 * time.Minute,
		ClockDriftClear:   time.Minute,
		RaiseAfter:        2,
		ClearAfter:        2,
	}
}

// Validate reports every threshold that cannot work, naming it.
func (t Thresholds) Validate() error {
	var errs []string
	if t.Interval <= 0 {
		errs = append(errs, "interval must be positive")
	}
	if t.DisconnectedAfter < 1 {
		errs = append(errs, "disconnected_after must be at least 1 interval")
	}
	if t.SlowLatency <= 0 {
		errs = append(errs, "slow_latency must be positive")
	}
	if t.SlowFailureRatio <= 0 || t.SlowFailureRatio > 1 {
		errs = append(errs, "slow_failure_ratio must be in (0, 1]")
	}
	if t.SlowWindow < 2 || t.SlowWindow > 64 {
		errs = append(errs, "slow_window must be between 2 and 64 sessions")
	}
	if t.StorageFull <= 0 || t.StorageFull > 1 {
		errs = append(errs, "storage_full must be in (0, 1]")
	}
	if t.StorageClear <= 0 || t.StorageClear > t.StorageFull {
		errs = append(errs, fmt.Sprintf("storage_clear must be positive and at most storage_full (%v)", t.StorageFull))
	}
	if t.ClockDrift <= 0 {
		errs = append(errs, "clock_drift must be positive")
	}
	if t.ClockDriftClear <= 0 || t.ClockDriftClear > t.ClockDrift {
		errs = append(errs, fmt.Sprintf("clock_drift_clear must be positive and at most clock_drift (%v)", t.ClockDrift))
	}
	if t.RaiseAfter < 1 || t.ClearAfter < 1 {
		errs = append(errs, "raise_after and clear_after must be at least 1")
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("thresholds: %s", joinSemi(errs))
}

// DisconnectWindow is how long without contact makes a device disconnected.
func (t Thresholds) DisconnectWindow() time.Duration {
	return time.Duration(t.DisconnectedAfter) * t.Interval
}

// Condition is the hysteresis state of one condition of one device.
type Condition struct {
	Active bool `json:"active"`
	// Since is when the condition was last raised (Active) or cleared.
	Since time.Time `json:"since,omitzero"`
	// Streak counts consecutive observations against the current value; at
	// RaiseAfter or ClearAfter the condition flips.
	Streak int    `json:"streak,omitempty"`
	Detail string `json:"detail,omitempty"`
	// RaisedAt is, on a cleared condition, when it had been raised.
	RaisedAt time.Time `json:"raised_at,omitzero"`
}

// Span is one entry of a device's state history: State from From until the
// next span's From.
type Span struct {
	State State     `json:"state"`
	From  time.Time `json:"from"`
}

// HistoryKeep is how far back History reaches (the 7-day timeline plus a
// day), and HistoryMax caps its length whatever the device does.
const (
	HistoryKeep = 8 * 24 * time.Hour
	HistoryMax  = 2000
)

// Device is everything healthwatch knows about one device. The identity
// fields (Serial, Name, Site, Team, Configured) are the caller's to fill;
// Observe and Evaluate maintain the rest.
type Device struct {
	Serial     string `json:"serial"`
	Name       string `json:"name,omitempty"`
	Site       string `json:"site,omitempty"`
	Team       string `json:"team,omitempty"`
	Configured bool   `json:"configured,omitempty"`
	// KnownSince is when healthwatch first knew of the device: its first
	// heartbeat, or when it was configured.
	KnownSince time.Time `json:"known_since"`

	FirstSeenAt time.Time `json:"first_seen_at,omitzero"`
	LastSeenAt  time.Time `json:"last_seen_at,omitzero"`
	// LastContactAt is the last session that reached the device.
	LastContactAt time.Time `json:"last_contact_at,omitzero"`
	// LastSyncAt is the last session that completed without error.
	LastSyncAt time.Time `json:"last_sync_at,omitzero"`
	Heartbeats int       `json:"heartbeats"`

	Address        string  `json:"address,omitempty"`
	LatencyMS      float64 `json:"latency_ms"`
	ErrorClass     string  `json:"error_class,omitempty"`
	Error          string  `json:"error,omitempty"`
	Firmware       string  `json:"firmware,omitempty"`
	Users          int     `json:"users,omitempty"`
	Records        int     `json:"records,omitempty"`
	RecordCapacity int     `json:"record_capacity,omitempty"`
	CapacityUsed   float64 `json:"capacity_used,omitempty"`
	ClockOffsetMS  int64   `json:"clock_offset_ms,omitempty"`
	// RecordsAtSync is the device's record count at its last sync.
	RecordsAtSync int `json:"records_at_sync,omitempty"`

	// Sessions holds the outcome of the most recent sessions, newest in
	// bit 0 (1 = failed); SessionCount says how many bits are valid.
	Sessions     uint64 `json:"sessions"`
	SessionCount int    `json:"session_count"`

	Conditions map[State]Condition `json:"conditions,omitempty"`
	State      State               `json:"state"`
	StateSince time.Time           `json:"state_since"`
	History    []Span              `json:"history,omitempty"`
}

// Transition is a condition raised or cleared.
type Transition struct {
	Condition State
	Raised    bool
	At        time.Time
	// RaisedAt is, for a clear, when the condition was raised.
	RaisedAt time.Time
	Detail   string
}

// New returns a configured device first known at known (when healthwatch
// learnt of it), in state never_seen until a heartbeat arrives. A device
// first known from its own heartbeat starts as Device{Serial: serial}
// instead: Observe fills the rest.
func New(serial string, known time.Time) Device {
	return Device{Serial: serial, KnownSince: known, State: NeverSeen, StateSince: known,
		History: []Span{{State: NeverSeen, From: known}}}
}

// RecordsWaiting is how many records the device reported beyond those it
// held at its last sync: records known to wait for collection. A device that
// cannot be reached may hold more.
func (d Device) RecordsWaiting() int {
	return max(0, d.Records-d.RecordsAtSync)
}

// Unsynced reports whether d has data that may not have reached payroll by
// now: it never synced, its last sync is older than after, or it reported
// records that were not collected.
func (d Device) Unsynced(now time.Time, after time.Duration) bool {
	return d.LastSyncAt.IsZero() || now.Sub(d.LastSyncAt) > after || d.RecordsWaiting() > 0
}

// Active reports whether condition c is raised.
func (d Device) Active(c State) bool { return d.Conditions[c].Active }

// ActiveConditions returns the raised conditions, most severe first.
func (d Device) ActiveConditions() []State {
	var out []State
	for _, c := range Conditions() {
		if d.Active(c) {
			out = append(out, c)
		}
	}
	return out
}

// Synced reports whether the session of hb collected what the device held:
// it reached the device and ended without error, or ended with only records
// that did not decode (class protocol with RecordsRejected: the collector
// read everything and dead-lettered those, so nothing is left waiting).
func Synced(hb proto.Heartbeat) bool {
	if !hb.Reachable {
		return false
	}
	return hb.ErrorClass == "" || hb.ErrorClass == proto.ErrorClassProtocol && hb.RecordsRejected > 0
}

// Observe folds heartbeat hb into d under th. It returns the new device, the
// transitions the heartbeat caused, and whether anything changed. A
// heartbeat no newer than the last one applied (a redelivery, or replicas
// racing) changes nothing. d itself is not modified.
func Observe(d Device, hb proto.Heartbeat, th Thresholds) (Device, []Transition, bool) {
	at := hb.ObservedAt
	if d.Heartbeats > 0 && !at.After(d.LastSeenAt) {
		return d, nil, false
	}
	d = d.clone()
	if d.Heartbeats == 0 && len(d.History) > 0 && at.Before(d.History[len(d.History)-1].From) {
		// A configured device whose first heartbeat predates its
		// configuration (a backlog read after a restart): it was never
		// "never seen"; its history starts with this heartbeat.
		d.History, d.State = nil, ""
	}
	if d.KnownSince.IsZero() || at.Before(d.KnownSince) {
		d.KnownSince = at
	}
	if d.FirstSeenAt.IsZero() {
		d.FirstSeenAt = at
	}
	d.LastSeenAt = at
	d.Heartbeats++
	if hb.Address != "" {
		d.Address = hb.Address
	}
	if hb.Firmware != "" {
		d.Firmware = hb.Firmware
	}
	d.ErrorClass, d.Error = hb.ErrorClass, hb.Error
	contact := hb.Reachable
	synced := Synced(hb)
	if contact {
		d.LastContactAt = at
		d.LatencyMS = hb.LatencyMS
		if hb.Users > 0 {
			d.Users = hb.Users
		}
		if hb.RecordCapacity > 0 || hb.Records > 0 {
			d.Records, d.RecordCapacity = hb.Records, hb.RecordCapacity
			d.CapacityUsed = hb.CapacityUsed
			if d.CapacityUsed == 0 && hb.RecordCapacity > 0 {
				d.CapacityUsed = float64(hb.Records) / float64(hb.RecordCapacity)
			}
		}
		d.ClockOffsetMS = hb.ClockOffsetMS
	}
	if synced {
		d.LastSyncAt = at
		d.RecordsAtSync = d.Records
	}
	if hb.ErrorClass != proto.ErrorClassUnauthorized {
		// A rejected key is its own condition, not a partial failure.
		d.pushSession(!synced)
	}

	var trs []Transition
	add := func(t *Transition) {
		if t != nil {
			trs = append(trs, *t)
		}
	}
	// Any heartbeat ends never_seen.
	add(d.step(NeverSeen, verdictGood, at, 1, 1, ""))

	unauthorized := hb.ErrorClass == proto.ErrorClassUnauthorized
	switch {
	case unauthorized:
		add(d.step(Unauthorized, verdictBad, at, th.RaiseAfter, th.ClearAfter, "comm key rejected"+suffix(hb.Error)))
	case contact:
		add(d.step(Unauthorized, verdictGood, at, th.RaiseAfter, th.ClearAfter, ""))
	}
	// A session that never reached the device says nothing about its key,
	// speed, storage or clock: those streaks are left as they are.

	if contact {
		t := d.step(Disconnected, verdictGood, at, 1, th.ClearAfter, "")
		if t != nil {
			// Failures while disconnected say nothing about speed now.
			d.Sessions, d.SessionCount = 0, 1
		}
		add(t)
	} else {
		if d.Active(Disconnected) {
			d.step(Disconnected, verdictBad, at, 1, th.ClearAfter, "")
		}
		add(d.checkDisconnected(at, th))
	}

	if contact && !unauthorized && !d.Active(Disconnected) {
		bad, detail := slowVerdict(d, th)
		add(d.step(Slow, bad, at, th.RaiseAfter, th.ClearAfter, detail))
	}

	if contact && d.RecordCapacity > 0 {
		v := verdictNeutral
		switch {
		case d.CapacityUsed >= th.StorageFull:
			v = verdictBad
		case d.CapacityUsed < th.StorageClear:
			v = verdictGood
		}
		add(d.step(StorageFull, v, at, th.RaiseAfter, th.ClearAfter,
			fmt.Sprintf("storage %.0f%% used (%d of %d records; threshold %.0f%%)", d.CapacityUsed*100, d.Records, d.RecordCapacity, th.StorageFull*100)))
	}

	if contact && !unauthorized {
		off := time.Duration(d.ClockOffsetMS) * time.Millisecond
		v := verdictNeutral
		switch {
		case absDur(off) >= th.ClockDrift:
			v = verdictBad
		case absDur(off) < th.ClockDriftClear:
			v = verdictGood
		}
		add(d.step(ClockDrift, v, at, th.RaiseAfter, th.ClearAfter,
			fmt.Sprintf("clock off by %s (threshold %s)", signedDur(off), Human(th.ClockDrift))))
	}

	d.refresh(at)
	return d, trs, true
}

// Evaluate applies the rules that depend on time passing rather than on a
// heartbeat: a device unseen or out of contact for too long. now is the
// caller's clock. It returns the new device, its transitions, and whether
// anything changed; d itself is not modified. A time-based transition is
// dated at its deadline, not at now, so that every replica computes the same
// one.
func Evaluate(d Device, now time.Time, th Thresholds) (Device, []Transition, bool) {
	var trs []Transition
	if d.Heartbeats == 0 {
		if d.Active(NeverSeen) {
			return d, nil, false
		}
		deadline := d.KnownSince.Add(th.DisconnectWindow())
		if now.Before(deadline) {
			return d, nil, false
		}
		d = d.clone()
		if t := d.raise(NeverSeen, deadline, "no heartbeat in "+Human(th.DisconnectWindow())+" since it was configured"); t != nil {
			trs = append(trs, *t)
		}
		d.refresh(deadline)
		return d, trs, true
	}
	if d.Active(Disconnected) {
		return d, nil, false
	}
	if now.Before(d.disconnectDeadline(th)) {
		return d, nil, false
	}
	d = d.clone()
	t := d.checkDisconnected(now, th)
	if t == nil {
		return d, nil, false
	}
	d.refresh(t.At)
	return d, []Transition{*t}, true
}

func (d *Device) disconnectDeadline(th Thresholds) time.Time {
	ref := d.LastContactAt
	if ref.IsZero() {
		ref = d.FirstSeenAt
	}
	return ref.Add(th.DisconnectWindow())
}

func (d *Device) checkDisconnected(now time.Time, th Thresholds) *Transition {
	if d.Active(Disconnected) || d.Heartbeats == 0 {
		return nil
	}
	deadline := d.disconnectDeadline(th)
	if now.Before(deadline) {
		return nil
	}
	detail := fmt.Sprintf("no contact for %s (%d × %s)", Human(now.Sub(deadline)+th.DisconnectWindow()), th.DisconnectedAfter, Human(th.Interval))
	if d.LastContactAt.IsZero() {
		detail = "never reached since its first heartbeat"
	}
	if d.ErrorClass != "" {
		detail += "; last error " + d.ErrorClass + suffix(d.Error)
	}
	return d.raise(Disconnected, deadline, detail)
}

type verdict int

const (
	verdictNeutral verdict = iota
	verdictGood
	verdictBad
)

// step records one observation of condition c and flips it after
// raiseAfter consecutive bad or clearAfter consecutive good observations.
// A neutral observation breaks any streak.
func (d *Device) step(c State, v verdict, at time.Time, raiseAfter, clearAfter int, detail string) *Transition {
	cond := d.Conditions[c]
	defer func() { d.setCond(c, cond) }()
	if v == verdictNeutral {
		cond.Streak = 0
		return nil
	}
	bad := v == verdictBad
	if bad == cond.Active {
		cond.Streak = 0
		if bad && detail != "" {
			cond.Detail = detail
		}
		return nil
	}
	cond.Streak++
	need := clearAfter
	if bad {
		need = raiseAfter
	}
	if cond.Streak < need {
		return nil
	}
	t := &Transition{Condition: c, Raised: bad, At: at, Detail: detail}
	next := Condition{Active: bad, Since: at, Detail: detail}
	if !bad {
		t.RaisedAt, t.Detail = cond.Since, "back to normal after "+Human(at.Sub(cond.Since))
		next.RaisedAt, next.Detail = cond.Since, ""
	}
	cond = next
	return t
}

func (d *Device) raise(c State, at time.Time, detail string) *Transition {
	if d.Active(c) {
		return nil
	}
	d.setCond(c, Condition{Active: true, Since: at, Detail: detail})
	return &Transition{Condition: c, Raised: true, At: at, Detail: detail}
}

func (d *Device) setCond(c State, cond Condition) {
	if cond == (Condition{}) {
		delete(d.Conditions, c)
		return
	}
	if d.Conditions == nil {
		d.Conditions = map[State]Condition{}
	}
	d.Conditions[c] = cond
}

func (d *Device) pushSession(failed bool) {
	d.Sessions <<= 1
	if failed {
		d.Sessions |= 1
	}
	d.SessionCount = min(d.SessionCount+1, 64)
}

// failures counts failed sessions among the last n.
func (d *Device) failures(n int) (failed, seen int) {
	seen = min(n, d.SessionCount)
	for i := range seen {
		if d.Sessions&(1<<i) != 0 {
			failed++
		}
	}
	return failed, seen
}

// slowVerdict judges one session that reached the device.
func slowVerdict(d Device, th Thresholds) (verdict, string) {
	lat := time.Duration(d.LatencyMS * float64(time.Millisecond))
	if lat > th.SlowLatency {
		return verdictBad, fmt.Sprintf("latency %s (threshold %s)", Human(lat), Human(th.SlowLatency))
	}
	failed, seen := d.failures(th.SlowWindow)
	if seen*2 >= th.SlowWindow && float64(failed) > th.SlowFailureRatio*float64(seen) {
		return verdictBad, fmt.Sprintf("%d of the last %d sessions failed (threshold %.0f%%)", failed, seen, th.SlowFailureRatio*100)
	}
	return verdictGood, ""
}

// refresh recomputes State and appends to History when it changed.
func (d *Device) refresh(at time.Time) {
	s := Online
	if d.Heartbeats == 0 {
		s = NeverSeen
	} else if active := d.ActiveConditions(); len(active) > 0 {
		s = active[0]
	}
	if s == d.State {
		return
	}
	if n := len(d.History); n > 0 && at.Before(d.History[n-1].From) {
		at = d.History[n-1].From
	}
	d.State, d.StateSince = s, at
	d.History = append(d.History, Span{State: s, From: at})
	d.prune(at)
}

// prune drops history that ended more than HistoryKeep before now, keeping
// the span in force at the cut so a timeline starts with the right state.
func (d *Device) prune(now time.Time) {
	cut := now.Add(-HistoryKeep)
	i := 0
	for i+1 < len(d.History) && !d.History[i+1].From.After(cut) {
		i++
	}
	if over := len(d.History) - i - HistoryMax; over > 0 {
		i += over
	}
	if i > 0 {
		d.History = slices.Clone(d.History[i:])
	}
}

// clone returns d with its own Conditions. History is shared but clipped:
// it is only ever appended to (which then copies) or replaced, never
// written in place, so d's caller keeps its history intact.
func (d Device) clone() Device {
	d.Conditions = maps.Clone(d.Conditions)
	d.History = slices.Clip(d.History)
	return d
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func signedDur(d time.Duration) string {
	if d < 0 {
		return "-" + Human(-d)
	}
	return "+" + Human(d)
}

// Human writes d for people: "45s", "12m", "3h 5m", "2d 4h".
func Human(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		s := d.Seconds()
		if s == math.Trunc(s) {
			return fmt.Sprintf("%.0fs", s)
		}
		return fmt.Sprintf("%.1fs", s)
	case d < time.Hour:
		m, s := int(d/time.Minute), int(d%time.Minute/time.Second)
		if s == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm %ds", m, s)
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh %dm", h, m)
	default:
		days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd %dh", days, h)
	}
}

func joinSemi(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}
