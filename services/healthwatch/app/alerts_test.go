package app

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
	"github.com/punchflow/punchflow/services/healthwatch/internal/page"
)

// runSim publishes a heartbeat for every device every period until the
// test ends; state(serial) gives each session's outcome. It returns the
// time of the last session that reached each device.
type sim struct {
	mu          sync.Mutex
	lastContact map[string]time.Time
	stop        chan struct{}
	done        chan struct{}
}

func runSim(t *testing.T, f *fleetSim, period time.Duration, devices map[string]string, state func(serial string) session) *sim {
	s := &sim{lastContact: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	serials := make([]string, 0, len(devices))
	for d := range devices {
		serials = append(serials, d)
	}
	slices.Sort(serials)
	go func() {
		defer close(s.done)
		tk := time.NewTicker(period)
		defer tk.Stop()
		for {
			for _, d := range serials {
				st := state(d)
				now := time.Now()
				f.publish(d, devices[d], now, st)
				if st.reachable {
					s.mu.Lock()
					s.lastContact[d] = now
					s.mu.Unlock()
				}
			}
			select {
			case <-s.stop:
				return
			case <-tk.C:
			}
		}
	}()
	t.Cleanup(s.halt)
	return s
}

func (s *sim) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

func (s *sim) contact(serial string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastContact[serial]
}

func deviceStates(t *testing.T, addr string) (map[string]health.Device, error) {
	var resp page.APIResponse
	if err := getJSON(t, "http://"+addr+"/api/devices", &resp); err != nil {
		return nil, err
	}
	out := map[string]health.Device{}
	for _, d := range resp.Devices {
		out[d.Serial] = d
	}
	return out, nil
}

// TestDisconnectedAlertAndResolvedNoticeExactlyOnce runs two replicas
// against a simulated fleet: a device stops answering, is reported
// disconnected within the configured window, comes back, and is reported
// resolved; each notice reaches each channel exactly once, Alertmanager
// gets re-sends while it is active and the resolution after, and a restart
// of both replicas neither forgets nor re-alerts.
func TestDisconnectedAlertAndResolvedNoticeExactlyOnce(t *testing.T) {
	ns := natsServer(t)
	hooks := newHook(t, testSecret)
	am := newAMReceiver(t)
	const window = 2 * time.Second // 4 intervals of 500ms
	policyFile := writePolicy(t, fmt.Sprintf(`
time_zone: UTC
status_page_url: http://healthwatch.test
thresholds: {interval: 500ms, disconnected_after: 4, raise_after: 2, clear_after: 2}
reports: {times: []}
alerts: {group_wait: 300ms}
devices:
  - {serial: D1, site: hq, name: Front door}
  - {serial: D2, site: hq}
  - {serial: D3, site: plant}
teams:
  support: {channels: [hooks], alerts: [all]}
  network: {channels: [am], alerts: [disconnected]}
channels:
  hooks: {type: webhook, url: %s/hook, secret: %s, retry: {initial: 50ms, max: 200ms, give_up_after: 3s}}
  am: {type: alertmanager, url: %s, resend_every: 1s}
`, hooks.URL, testSecret, am.URL))
	args := []string{"--policy", policyFile, "--evaluate-every", "100ms"}
	a := startReplica(t, "replica-a", ns, args...)
	b := startReplica(t, "replica-b", ns, args...)

	var d1Down atomic.Bool
	f := newFleetSim(t, ns)
	s := runSim(t, f, 250*time.Millisecond, map[string]string{"D1": "hq", "D2": "hq", "D3": "plant"}, func(serial string) session {
		if serial == "D1" && d1Down.Load() {
			return session{reachable: false, class: proto.ErrorClassTimeout}
		}
		return good
	})

	servicetest.WaitFor(t, "every device online", 15*time.Second, func() (bool, string) {
		devs, err := deviceStates(t, b.Addr)
		if err != nil {
			return false, err.Error()
		}
		for _, d := range []string{"D1", "D2", "D3"} {
			if devs[d].State != health.Online {
				return false, fmt.Sprintf("%s is %q", d, devs[d].State)
			}
		}
		return true, ""
	})

	// D1 stops answering.
	d1Down.Store(true)
	downAt := time.Now()
	servicetest.WaitFor(t, "the disconnected alert", window+10*time.Second, func() (bool, string) {
		return count(hooks.events(), "D1 disconnected raised") > 0, fmt.Sprint(hooks.events())
	})
	arrived := time.Since(downAt)
	lastContact := s.contact("D1")
	var raised *struct{ at, raisedAt time.Time }
	for _, m := range hooks.got() {
		for _, e := range m.Events {
			if e.Device == "D1" && e.Condition == health.Disconnected && !e.Resolved {
				raised = &struct{ at, raisedAt time.Time }{e.At, e.RaisedAt}
			}
		}
	}
	if raised == nil || !raised.at.Equal(lastContact.Add(window)) {
		t.Errorf("disconnected dated %v, want the last contact %v plus the window %v", raised, lastContact, window)
	}
	t.Logf("disconnected alert received %v after the device stopped answering (window %v)", arrived.Round(time.Millisecond), window)

	// Alertmanager is re-sent the firing alert while it lasts.
	servicetest.WaitFor(t, "Alertmanager re-sends", 10*time.Second, func() (bool, string) {
		n := 0
		for _, post := range am.posts() {
			for _, al := range post {
				if al.Labels["device"] == "D1" && al.EndsAt.After(al.Received) {
					n++
				}
			}
		}
		return n >= 3, fmt.Sprintf("%d firing posts", n)
	})

	// D1 comes back.
	d1Down.Store(false)
	servicetest.WaitFor(t, "the resolved notice", 15*time.Second, func() (bool, string) {
		return count(hooks.events(), "D1 disconnected resolved") > 0, fmt.Sprint(hooks.events())
	})
	// Let any duplicate arrive, and Alertmanager see two re-sends after the
	// resolution.
	time.Sleep(2500 * time.Millisecond)

	events := hooks.events()
	if diff := slices.Compare(events, []string{"D1 disconnected raised", "D1 disconnected resolved"}); diff != 0 {
		t.Errorf("webhook events = %v, want exactly one raise and one resolved notice for D1", events)
	}
	ids := map[string]bool{}
	for _, id := range hooks.ids {
		if ids[id] {
			t.Errorf("webhook-id %s delivered twice", id)
		}
		ids[id] = true
	}
	var lastD1 *amAlert
	for _, post := range am.posts() {
		for _, al := range post {
			if al.Labels["device"] != "D1" {
				t.Errorf("Alertmanager got an alert for %v", al.Labels)
			}
			if al.Labels["alertname"] != "PunchflowDeviceDisconnected" || al.Labels["team"] != "" && al.Labels["site"] != "hq" {
				t.Errorf("Alertmanager labels %v", al.Labels)
			}
			al := al
			lastD1 = &al
		}
	}
	if lastD1 == nil || lastD1.EndsAt.After(lastD1.Received) || !lastD1.StartsAt.Equal(raised.at) {
		t.Errorf("last Alertmanager alert for D1 = %+v, want it resolved (endsAt in the past) and starting at %v", lastD1, raised.at)
	}

	// The metrics say what happened: the sends are counted by the replica
	// that made them.
	var sent string
	for _, r := range []*replica{a, b} {
		_, m := get(t, "http://"+r.Addr+"/metrics")
		for _, line := range strings.Split(m, "\n") {
			if strings.HasPrefix(line, "punchflow_healthwatch_notifications_sent_total") || strings.HasPrefix(line, "punchflow_healthwatch_transitions_total") {
				sent += r.Name + " " + line + "\n"
			}
		}
	}
	if !strings.Contains(sent, `notifications_sent_total{channel="hooks",type="alert"}`) || !strings.Contains(sent, `notifications_sent_total{channel="am",type="resend"}`) ||
		!strings.Contains(sent, `transitions_total{condition="disconnected",direction="raised"} 1`) {
		t.Errorf("metrics:\n%s", sent)
	}

	// A restart of both replicas neither forgets nor re-alerts.
	before := am.posts()
	a.stop(t)
	b.stop(t)
	a = startReplica(t, "replica-a2", ns, args...)
	b = startReplica(t, "replica-b2", ns, args...)
	time.Sleep(2 * time.Second)
	if got := hooks.events(); len(got) != 2 {
		t.Errorf("after a restart the webhook got %v", got[2:])
	}
	devs, err := deviceStates(t, a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	d1 := devs["D1"]
	if d1.State != health.Online || len(d1.History) < 3 || d1.Conditions[health.Disconnected].RaisedAt.IsZero() {
		t.Errorf("D1 after restart: state %s history %v conditions %v", d1.State, d1.History, d1.Conditions)
	}
	for _, post := range am.posts()[len(before):] {
		for _, al := range post {
			if al.EndsAt.After(al.Received) {
				t.Errorf("after the restart Alertmanager got a firing alert %v", al.Labels)
			}
		}
	}
	servicetest.WaitFor(t, "the devices gauge", 5*time.Second, func() (bool, string) {
		_, m := get(t, "http://"+a.Addr+"/metrics")
		return strings.Contains(m, `punchflow_healthwatch_devices{state="online"} 3`), ""
	})
}
