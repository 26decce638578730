package app

import (
	"slices"
	"time"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
	"github.com/punchflow/punchflow/services/healthwatch/internal/policy"
	"github.com/punchflow/punchflow/services/healthwatch/internal/state"
)

// folder turns heartbeats and the passing of time into new records: the
// source view, the device health, and the notifications to queue. Its
// methods are pure given now, so store.update may run them more than once;
// the caller counts the outcome of the run that was written.
type folder struct {
	pol *policy.Policy
}

// outcome is what one fold did besides the record: its transitions and the
// reasons any of them were not alerted.
type outcome struct {
	trs        []health.Transition
	suppressed []string
}

// count adds o to the metrics.
func (o outcome) count(m *watchMetrics) {
	for _, t := range o.trs {
		dir := "cleared"
		if t.Raised {
			dir = "raised"
		}
		m.transitions.WithLabelValues(string(t.Condition), dir).Inc()
	}
	for _, r := range o.suppressed {
		m.suppressed.WithLabelValues(r).Inc()
	}
}

// deviceKey is the state key of a device serial.
func deviceKey(serial string) string {
	return state.Key(proto.Heartbeat{Kind: proto.HeartbeatDevice, Source: serial})
}

// heartbeat folds hb into prev at wall-clock now. prev is not modified.
func (f folder) heartbeat(prev *record, hb proto.Heartbeat, now time.Time) (record, outcome, bool) {
	var r record
	var src *state.Source
	if prev != nil {
		r = prev.clone()
		if prev.Heartbeats > 0 {
			s := prev.Source
			src = &s
		}
	}
	next, changed := state.Apply(src, hb)
	if !changed {
		return r, outcome{}, false
	}
	r.Source = next
	if hb.Kind != proto.HeartbeatDevice {
		return r, outcome{}, true
	}
	d := health.Device{Serial: hb.Source}
	if r.Device != nil {
		d = *r.Device
	}
	f.meta(&d, hb.Site)
	d, trs, _ := health.Observe(d, hb, f.pol.Thresholds(d.Site))
	r.Device = &d
	return r, outcome{trs: trs, suppressed: f.queue(&r, trs, now)}, true
}

// evaluate applies the time-based rules and the policy's current metadata
// to prev at now, and announces conditions raised while healthwatch was
// catching up. Call it only once the heartbeat backlog is consumed.
func (f folder) evaluate(prev *record, now time.Time) (record, outcome, bool) {
	if prev == nil || prev.Device == nil {
		return record{}, outcome{}, false
	}
	r := prev.clone()
	d := *r.Device
	before := d
	f.meta(&d, "")
	metaChanged := d.Name != before.Name || d.Site != before.Site || d.Team != before.Team || d.Configured != before.Configured
	d, trs, changed := health.Evaluate(d, now, f.pol.Thresholds(d.Site))
	if !changed && !metaChanged && len(r.Unannounced) == 0 {
		return r, outcome{}, false
	}
	r.Device = &d
	o := outcome{trs: trs, suppressed: f.queue(&r, trs, now)}
	o.suppressed = append(o.suppressed, f.announce(&r, now)...)
	return r, o, true
}

// configured returns the record of a configured device healthwatch has
// not seen yet.
func (f folder) configured(serial string, now time.Time) record {
	d := health.New(serial, now)
	f.meta(&d, "")
	return record{Source: state.Source{Source: serial, Kind: proto.HeartbeatDevice, Site: d.Site}, Device: &d}
}

// meta applies the policy's name, site and owning team to d; a site from a
// heartbeat is used when the policy names none.
func (f folder) meta(d *health.Device, hbSite string) {
	cfg, ok := f.pol.Devices[d.Serial]
	d.Configured = ok
	switch {
	case ok && cfg.Site != "":
		d.Site = cfg.Site
	case hbSite != "":
		d.Site = hbSite
	}
	if ok {
		d.Name = cfg.Name
	}
	d.Team = f.pol.Owner(d.Serial, d.Site)
}

// queue appends to r's outbox the notifications for trs and returns why any
// transition was not alerted.
//
// A raise found long after it happened (heartbeats replayed after an
// outage of healthwatch, or a first start over a week of history) is not
// alerted at once: the condition is kept as unannounced, and announce
// alerts it once healthwatch has caught up, if it is still active then. So
// a replay alerts what is wrong now, not every flap of the past week.
func (f folder) queue(r *record, trs []health.Transition, now time.Time) []string {
	var suppressed []string
	for _, t := range trs {
		unannounced := slices.Contains(r.Unannounced, t.Condition)
		if !t.Raised && unannounced {
			r.Unannounced = slices.DeleteFunc(r.Unannounced, func(s health.State) bool { return s == t.Condition })
			suppressed = append(suppressed, "stale")
			continue
		}
		if t.Raised && now.Sub(t.At) > f.pol.AlertMaxAge {
			if !unannounced {
				r.Unannounced = append(r.Unannounced, t.Condition)
			}
			continue
		}
		if reason := f.enqueue(r, t, now); reason != "" {
			suppressed = append(suppressed, reason)
		}
	}
	return suppressed
}

// announce queues the raise of every unannounced condition still active.
func (f folder) announce(r *record, now time.Time) []string {
	var suppressed []string
	for _, c := range r.Unannounced {
		cond := r.Device.Conditions[c]
		if !cond.Active {
			continue
		}
		if reason := f.enqueue(r, health.Transition{Condition: c, Raised: true, At: cond.Since, Detail: cond.Detail}, now); reason != "" {
			suppressed = append(suppressed, reason)
		}
	}
	r.Unannounced = nil
	return suppressed
}

func (f folder) enqueue(r *record, t health.Transition, now time.Time) string {
	d := *r.Device
	teams := f.pol.AlertTeams(t.Condition, d.Site, d.Team)
	if len(teams) == 0 {
		return "no_team"
	}
	ev := notify.NewEvent(d, d.Team, t)
	r.Outbox = append(r.Outbox, notify.Item{ID: notify.EventID(d.Serial, t.Condition, t.Raised, t.At), Type: notify.TypeAlert,
		Teams: teams, Created: now, Event: &ev})
	return ""
}
