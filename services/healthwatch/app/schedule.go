package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
	"github.com/punchflow/punchflow/services/healthwatch/internal/policy"
	"github.com/punchflow/punchflow/services/healthwatch/internal/schedule"
)

// scheduleLoop queues due reports and payroll escalations and re-sends
// active alerts to Alertmanager, every EvaluateEvery until ctx ends.
func (a *app) scheduleLoop(ctx context.Context) error {
	t := time.NewTicker(a.cfg.EvaluateEvery)
	defer t.Stop()
	for {
		if a.store.ready() && a.caughtUp.Load() {
			a.runSchedule(ctx, a.now())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// runSchedule looks back over the catch-up window (at least two ticks) for
// report and escalation slots nobody has claimed yet. A slot is claimed by
// a marker in the alerts bucket, created after its items are queued: a
// replica that dies in between leaves the slot to the next tick of any
// replica, and the items' ids keep the stream from storing them twice.
func (a *app) runSchedule(ctx context.Context, now time.Time) {
	from := now.Add(-max(a.pol.CatchUp, 2*a.cfg.EvaluateEvery))
	if teams := a.pol.ReportTeams(); len(teams) > 0 {
		for _, slot := range schedule.Daily(from, now, a.pol.Reports, a.pol.Zone) {
			a.claimSlot(ctx, fmt.Sprintf("sched.report.%d", slot.Unix()), notify.TypeReport, func(devs []health.Device) []notify.Item {
				return a.reportItems(notify.KindScheduled, teams, devs, slot, now)
			})
		}
	}
	if teams := a.pol.PayrollTeams(); len(teams) > 0 {
		for _, e := range schedule.Escalations(from, now, a.pol.Cutoffs, a.pol.EscalateBefore, a.pol.Zone) {
			a.claimSlot(ctx, fmt.Sprintf("sched.escalation.%d.%d", e.Cutoff.Unix(), int64(e.Before/time.Second)), notify.TypeEscalation, func(devs []health.Device) []notify.Item {
				return a.escalationItems(teams, devs, e, now)
			})
		}
	}
	for _, name := range a.pol.ChannelNames() {
		if a.pol.Channels[name].Type == policy.Alertmanager {
			a.resendActive(ctx, name, now)
		}
	}
}

// claimSlot queues the items build makes of the current device states,
// read from the bucket itself rather than this replica's cache (which may
// lag another replica's last write by a moment), unless the slot is claimed.
func (a *app) claimSlot(ctx context.Context, key, kind string, build func([]health.Device) []notify.Item) {
	if _, err := a.marks.Get(ctx, key); err == nil {
		return
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		a.rt.Log.Warn("read schedule claim", "key", key, "err", err)
		return
	}
	devs, err := readDevices(ctx, a.rt.JS, a.cfg.Topology.HealthBucket)
	if err != nil {
		a.rt.Log.Warn("read device states for a scheduled notification; will retry", "key", key, "err", err)
		return
	}
	items := build(devs)
	for _, it := range items {
		if err := a.publish(ctx, it); err != nil {
			a.rt.Log.Warn("queue scheduled notification; will retry", "key", key, "err", err)
			return
		}
	}
	if _, err := a.marks.Create(ctx, key, []byte(a.now().UTC().Format(time.RFC3339))); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			a.rt.Log.Warn("record schedule claim", "key", key, "err", err)
		}
		return
	}
	a.m.scheduled.WithLabelValues(kind).Add(float64(len(items)))
	a.rt.Log.Info("scheduled notifications queued", "slot", key, "type", kind, "items", len(items))
}

// scope returns the devices team sees.
func scope(pol *policy.Policy, team string, devs []health.Device) []health.Device {
	t, ok := pol.Teams[team]
	if !ok {
		return devs
	}
	var out []health.Device
	for _, d := range devs {
		if t.InScope(d.Site, d.Team) {
			out = append(out, d)
		}
	}
	return out
}

// reportItems builds one report per team, dated at slot.
func (a *app) reportItems(kind string, teams []string, devs []health.Device, slot, now time.Time) []notify.Item {
	var out []notify.Item
	for _, team := range teams {
		r := notify.BuildReport(kind, team, scope(a.pol, team, devs), now, a.pol.Zone)
		r.At = slot
		out = append(out, notify.Item{ID: notify.ReportID(kind, team, slot), Type: notify.TypeReport, Teams: []string{team}, Created: now, Report: &r})
	}
	return out
}

// escalationItems builds one escalation per payroll team that has unsynced
// devices.
func (a *app) escalationItems(teams []string, devs []health.Device, e schedule.Escalation, now time.Time) []notify.Item {
	var out []notify.Item
	for _, team := range teams {
		r := notify.BuildEscalation(team, scope(a.pol, team, devs), e.Cutoff, a.pol.UnsyncedAfter, now, a.pol.Zone)
		if len(r.Attention) == 0 {
			continue
		}
		r.At = e.At
		out = append(out, notify.Item{ID: notify.EscalationID(team, e.Cutoff, e.Before), Type: notify.TypeEscalation, Teams: []string{team}, Created: now, Report: &r})
	}
	return out
}

// resendActive re-sends every active alert routed to Alertmanager channel
// name once per resend interval (Alertmanager resolves alerts that are not
// re-sent), with the recently resolved ones. One replica per interval wins
// the claim and sends.
func (a *app) resendActive(ctx context.Context, name string, now time.Time) {
	c := a.pol.Channels[name]
	slot := now.Truncate(c.ResendEvery)
	key := fmt.Sprintf("amresend.%s.%d", proto.Token(name), slot.Unix())
	events := a.activeEvents(name, now)
	if len(events) == 0 {
		return
	}
	if _, err := a.marks.Create(ctx, key, []byte(now.UTC().Format(time.RFC3339))); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			a.rt.Log.Warn("claim alertmanager re-send", "channel", name, "err", err)
		}
		return
	}
	m := a.comp.Alerts(events, now)
	m.Type, m.ID = notify.TypeResend, key
	err := notify.Deliver(ctx, a.senders[name], m, notify.Retry{Initial: time.Second, Max: 5 * time.Second, GiveUpAfter: c.ResendEvery / 2}, func(at notify.Attempt) {
		if at.Wait > 0 {
			a.m.retries.WithLabelValues(name).Inc()
		}
	})
	if err != nil {
		a.m.failed.WithLabelValues(name, "resend").Inc()
		a.rt.Log.Warn("re-send active alerts; the next interval tries again", "channel", name, "alerts", len(events), "err", err)
		return
	}
	a.m.sent.WithLabelValues(name, notify.TypeResend).Inc()
}

// activeEvents returns the announced active conditions routed to channel
// name as raise events, and the conditions that cleared within the last
// three intervals as resolved events: a re-send that raced a resolved
// notice is corrected by the next one.
func (a *app) activeEvents(name string, now time.Time) []notify.Event {
	c := a.pol.Channels[name]
	_, recs := a.store.snapshot()
	var out []notify.Event
	for _, r := range recs {
		if r.Device == nil {
			continue
		}
		d := *r.Device
		for _, cs := range health.Conditions() {
			cond, ok := d.Conditions[cs]
			if !ok || slices.Contains(r.Unannounced, cs) || !slices.Contains(a.pol.ChannelsOf(a.pol.AlertTeams(cs, d.Site, d.Team)), name) {
				continue
			}
			switch {
			case cond.Active:
				out = append(out, notify.NewEvent(d, d.Team, health.Transition{Condition: cs, Raised: true, At: cond.Since, Detail: cond.Detail}))
			case !cond.RaisedAt.IsZero() && now.Sub(cond.Since) <= 3*c.ResendEvery:
				out = append(out, notify.NewEvent(d, d.Team, health.Transition{Condition: cs, At: cond.Since, RaisedAt: cond.RaisedAt}))
			}
		}
	}
	return out
}
