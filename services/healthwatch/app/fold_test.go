package app

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
	"github.com/punchflow/punchflow/services/healthwatch/internal/policy"
)

func testPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(`
thresholds: {interval: 1m, disconnected_after: 3, raise_after: 1, clear_after: 1}
alerts: {max_age: 1h}
sites: {hq: {team: facilities}}
devices: [{serial: D1, site: hq, name: Door}]
teams:
  support: {channels: [c], alerts: [all]}
  network: {channels: [c], alerts: [disconnected]}
  facilities: {channels: [c], alerts: [storage_full], own_devices_only: true}
channels: {c: {type: slack, url: "http://slack.test/x"}}
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func hbAt(serial string, at time.Time, reachable bool, used float64) proto.Heartbeat {
	hb := proto.Heartbeat{Source: serial, Kind: proto.HeartbeatDevice, Site: "elsewhere", ObservedAt: at, RunID: at.String(), Reachable: reachable,
		Records: int(used * 1000), RecordCapacity: 1000, CapacityUsed: used}
	if !reachable {
		hb.ErrorClass = proto.ErrorClassTimeout
	}
	return proto.NewHeartbeat(hb)
}

func outbox(r record) []string {
	var out []string
	for _, it := range r.Outbox {
		dir := "raised"
		if it.Event.Resolved {
			dir = "resolved"
		}
		out = append(out, fmt.Sprintf("%s %s %v", it.Event.Condition, dir, it.Teams))
	}
	return out
}

func TestFoldHeartbeatQueuesRoutedAlerts(t *testing.T) {
	f := folder{pol: testPolicy(t)}
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	r, o, changed := f.heartbeat(nil, hbAt("D1", now, true, 0.95), now)
	if !changed || len(o.trs) != 1 {
		t.Fatalf("changed %v transitions %v", changed, o.trs)
	}
	// The policy's site and name win over the heartbeat's; the site's team
	// owns the device.
	if d := r.Device; d.Site != "hq" || d.Name != "Door" || d.Team != "facilities" || !d.Configured || r.Source.Site != "elsewhere" {
		t.Errorf("device %+v source site %q", d, r.Source.Site)
	}
	if diff := cmp.Diff([]string{"storage_full raised [facilities support]"}, outbox(r)); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
	if id := r.Outbox[0].ID; id != notify.EventID("D1", health.StorageFull, true, now) {
		t.Errorf("item id %s", id)
	}
	// The same heartbeat again changes nothing and queues nothing more.
	r2, _, changed := f.heartbeat(&r, hbAt("D1", now, true, 0.95), now)
	if changed || len(r2.Outbox) != 1 {
		t.Errorf("a repeated heartbeat changed %v, outbox %v", changed, outbox(r2))
	}
}

func TestFoldAnnouncesLateRaisesOnlyIfStillActive(t *testing.T) {
	f := folder{pol: testPolicy(t)}
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	old := now.Add(-5 * time.Hour)
	// A backlog: full five hours ago (too late to alert then), fine an hour
	// later, unreachable from three hours ago (disconnected two hours ago,
	// still now).
	steps := []proto.Heartbeat{
		hbAt("X1", old, true, 0.95),
		hbAt("X1", old.Add(time.Hour), true, 0.2),
		hbAt("X1", old.Add(2*time.Hour), true, 0.2),
		hbAt("X1", old.Add(2*time.Hour+time.Minute), false, 0),
		hbAt("X1", old.Add(2*time.Hour+4*time.Minute), false, 0),
	}
	var r *record
	var suppressed []string
	for _, hb := range steps {
		next, o, _ := f.heartbeat(r, hb, now)
		suppressed = append(suppressed, o.suppressed...)
		r = &next
	}
	if len(r.Outbox) != 0 {
		t.Fatalf("late transitions were queued at once: %v", outbox(*r))
	}
	if diff := cmp.Diff([]health.State{health.Disconnected}, r.Unannounced); diff != "" {
		t.Errorf("unannounced (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"stale"}, suppressed); diff != "" {
		t.Errorf("suppressed (-want +got):\n%s", diff)
	}
	// Caught up: the evaluator announces what is still wrong, once.
	next, o, changed := f.evaluate(r, now)
	if !changed || len(next.Unannounced) != 0 {
		t.Fatalf("evaluate: changed %v unannounced %v", changed, next.Unannounced)
	}
	if diff := cmp.Diff([]string{"disconnected raised [network support]"}, outbox(next)); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
	if len(o.suppressed) != 0 {
		t.Errorf("suppressed %v", o.suppressed)
	}
	if _, _, changed := f.evaluate(&next, now.Add(time.Second)); changed {
		t.Error("a second evaluation changed the record")
	}
	// Its recovery is fresh and alerted.
	back, _, _ := f.heartbeat(&next, hbAt("X1", now.Add(time.Minute), true, 0.2), now.Add(time.Minute))
	if diff := cmp.Diff([]string{"disconnected raised [network support]", "disconnected resolved [network support]"}, outbox(back)); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
}

func TestFoldConfiguredDevice(t *testing.T) {
	f := folder{pol: testPolicy(t)}
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	r := f.configured("D1", now)
	if r.Device.State != health.NeverSeen || r.Device.Site != "hq" || r.Heartbeats != 0 {
		t.Fatalf("configured record %+v", r.Device)
	}
	next, o, changed := f.evaluate(&r, now.Add(3*time.Minute))
	if !changed || len(o.trs) != 1 || o.trs[0].Condition != health.NeverSeen {
		t.Fatalf("never seen not raised: %v", o.trs)
	}
	if diff := cmp.Diff([]string{"never_seen raised [support]"}, outbox(next)); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
}
