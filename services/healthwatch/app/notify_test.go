package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/services/healthwatch/internal/channel"
	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
)

// slackSink is a Slack incoming webhook that keeps every message's header.
type slackSink struct {
	*httptest.Server
	mu      sync.Mutex
	headers []string
	texts   []string
}

func newSlackSink(t *testing.T) *slackSink {
	s := &slackSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m channel.SlackMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || len(m.Blocks) == 0 || m.Blocks[0].Type != "header" {
			t.Errorf("slack payload: %v %+v", err, m)
			http.Error(w, "invalid_blocks", http.StatusBadRequest)
			return
		}
		var all strings.Builder
		for _, b := range m.Blocks {
			if b.Text != nil {
				all.WriteString(b.Text.Text + "\n")
			}
			for _, f := range b.Fields {
				all.WriteString(f.Text + "\n")
			}
		}
		s.mu.Lock()
		s.headers = append(s.headers, m.Blocks[0].Text.Text)
		s.texts = append(s.texts, all.String())
		s.mu.Unlock()
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *slackSink) got() ([]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.headers...), append([]string(nil), s.texts...)
}

// TestFailingChannelNeverBlocksHeartbeats keeps the webhook down while a
// device fills up: heartbeats are still folded, Slack is told at once, the
// webhook's failures are retried and counted, and once it is back it gets
// the alert exactly once: nothing lost, nothing doubled.
func TestFailingChannelNeverBlocksHeartbeats(t *testing.T) {
	ns := natsServer(t)
	hooks := newHook(t, testSecret)
	hooks.setFailing(true)
	slack := newSlackSink(t)
	policyFile := writePolicy(t, fmt.Sprintf(`
thresholds: {interval: 1s, raise_after: 2, clear_after: 2}
reports: {times: []}
alerts: {group_wait: 100ms}
teams:
  support: {channels: [hooks, slack], alerts: [all]}
channels:
  hooks: {type: webhook, url: %s, secret: %s, retry: {initial: 50ms, max: 100ms, give_up_after: 400ms}}
  slack: {type: slack, url: %s}
`, hooks.URL, testSecret, slack.URL))
	r := startReplica(t, "replica", ns, "--policy", policyFile, "--evaluate-every", "100ms")
	f := newFleetSim(t, ns)
	full := good
	full.used = 0.95
	base := time.Now()
	for i := range 2 {
		f.publish("FULL1", "hq", base.Add(time.Duration(i)*time.Second), full)
	}
	servicetest.WaitFor(t, "the Slack alert", 15*time.Second, func() (bool, string) {
		h, _ := slack.got()
		return len(h) == 1, fmt.Sprint(h)
	})
	// The webhook keeps failing; heartbeats are still processed.
	for i := range 5 {
		f.publish("OTHER", "hq", base.Add(time.Duration(i)*time.Second), good)
	}
	servicetest.WaitFor(t, "heartbeats folded while a channel fails", 10*time.Second, func() (bool, string) {
		devs, err := deviceStates(t, r.Addr)
		if err != nil {
			return false, err.Error()
		}
		return devs["OTHER"].Heartbeats == 5 && devs["FULL1"].State == health.StorageFull, fmt.Sprintf("%+v", devs["OTHER"].Heartbeats)
	})
	servicetest.WaitFor(t, "the webhook failure to be counted", 10*time.Second, func() (bool, string) {
		_, m := get(t, "http://"+r.Addr+"/metrics")
		return strings.Contains(m, `punchflow_healthwatch_notifications_failed_total{channel="hooks",reason="gave_up"}`) &&
			strings.Contains(m, `punchflow_healthwatch_notification_retries_total{channel="hooks"}`), ""
	})
	if len(hooks.events()) != 0 {
		t.Fatal("the failing webhook recorded events")
	}
	hooks.setFailing(false)
	servicetest.WaitFor(t, "the webhook to get the alert once it is back", 15*time.Second, func() (bool, string) {
		return len(hooks.events()) == 1, fmt.Sprint(hooks.events())
	})
	time.Sleep(time.Second)
	if got := hooks.events(); len(got) != 1 || got[0] != "FULL1 storage_full raised" {
		t.Errorf("webhook events = %v, want the storage alert once", got)
	}
	if h, texts := slack.got(); len(h) != 1 || !strings.Contains(h[0], "FULL1") || !strings.Contains(texts[0], "storage 95% used") {
		t.Errorf("slack got %v %v", h, texts)
	}
}

// TestScheduledReportsEscalationsAndReportCommand starts two replicas just
// after a report slot and a payroll escalation slot: each is sent once
// (the report to Slack, the escalation by e-mail); then the report command
// prints and sends on demand.
func TestScheduledReportsEscalationsAndReportCommand(t *testing.T) {
	ns := natsServer(t)
	slack := newSlackSink(t)
	mail := startSMTPSink(t)
	now := time.Now().UTC()
	slot := now.Add(-time.Minute).Truncate(time.Minute)
	cutoff := now.Add(3 * time.Hour).Truncate(time.Minute)
	policyFile := writePolicy(t, fmt.Sprintf(`
time_zone: UTC
thresholds: {interval: 1m}
reports: {times: ["%s"], catch_up: 10m}
payroll: {cutoffs: ["%s"], escalate_before: [%s], unsynced_after: 1h}
devices:
  - {serial: SYNCED, site: hq, name: Lobby}
  - {serial: NEVER, site: hq, name: Warehouse}
teams:
  support: {channels: [slack], reports: true}
  payroll: {channels: [mail], payroll: true}
channels:
  slack: {type: slack, url: %s}
  mail: {type: email, smtp: "%s", tls: none, from: healthwatch@example.com, to: [payroll@example.com]}
`, slot.Format("15:04"), cutoff.Format("2006-01-02 15:04"), cutoff.Sub(slot), slack.URL, mail.ln.Addr()))

	// SYNCED synced a minute ago, before healthwatch starts: in the report
	// as online, not escalated.
	provision(t, ns)
	f := newFleetSim(t, ns)
	f.publish("SYNCED", "hq", time.Now().Add(-time.Minute), good)
	args := []string{"--policy", policyFile, "--evaluate-every", "100ms"}
	startReplica(t, "replica-a", ns, args...)
	startReplica(t, "replica-b", ns, args...)

	servicetest.WaitFor(t, "the scheduled report and the escalation", 15*time.Second, func() (bool, string) {
		h, _ := slack.got()
		return len(h) >= 1 && len(mail.received()) >= 1, fmt.Sprintf("slack %v, %d mails", h, len(mail.received()))
	})
	time.Sleep(time.Second)
	h, texts := slack.got()
	if len(h) != 1 || !strings.Contains(h[0], "Report "+slot.Format("Mon 02 Jan 15:04")) || !strings.Contains(h[0], "of 2 online") {
		t.Errorf("slack got %v, want one report for the %s slot", h, slot.Format("15:04"))
	} else if !strings.Contains(texts[0], "NEVER Warehouse (hq)") || !strings.Contains(texts[0], "never synced") {
		t.Errorf("report text:\n%s", texts[0])
	}
	mails := mail.received()
	if len(mails) != 1 {
		t.Fatalf("%d mails, want one escalation", len(mails))
	}
	if m := mails[0]; !strings.Contains(m, "Payroll cut-off") || !strings.Contains(m, "NEVER Warehouse (hq)") || strings.Contains(m, "SYNCED Lobby") {
		t.Errorf("escalation mail:\n%s", m)
	}

	report := func(extra ...string) (string, error) {
		// Synchronised: NATS logs its connection asynchronously.
		var out, errOut servicetest.Buffer
		args := append([]string{"report", "--nats-url", ns.ClientURL(), "--policy", policyFile, "--log-format", "json"}, extra...)
		err := Run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	t.Run("print", func(t *testing.T) {
		out, err := report("--now", "--channel", "stdout")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"On-demand report", "of 2 online", "Needs attention (1)", "NEVER Warehouse (hq): never seen since"} {
			if !strings.Contains(out, want) {
				t.Errorf("printed report lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("send", func(t *testing.T) {
		out, err := report("--now", "--channel", "slack")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		h, _ := slack.got()
		if len(h) != 2 || !strings.Contains(h[1], "On-demand report") || !strings.Contains(out, "sent ") {
			t.Errorf("slack got %v; output %s", h, out)
		}
		// Without --channel: every report team's report to its channels.
		if out, err := report("--now"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if h, _ := slack.got(); len(h) != 3 {
			t.Errorf("slack got %v after report --now", h)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--channel", "stdout"}, "give --now"},
			{[]string{"--now", "--channel", "pager"}, `no channel "pager"`},
		} {
			if _, err := report(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("report %v = %v, want %q", tc.args, err, tc.want)
			}
		}
	})
}

// TestBadPolicyFailsFast checks that start-up refuses a broken policy with
// what to fix, before touching NATS.
func TestBadPolicyFailsFast(t *testing.T) {
	path := writePolicy(t, "teams: {ops: {channels: [pager]}}\nthresholds: {interval: soon}\n")
	var errOut bytes.Buffer
	err := Run(context.Background(), []string{"--policy", path, "--nats-url", "nats://127.0.0.1:1"}, func(string) string { return "" }, io.Discard, &errOut)
	if err == nil || !strings.Contains(err.Error(), "not a duration") {
		t.Fatalf("Run = %v", err)
	}
	path = writePolicy(t, "teams: {ops: {channels: [pager]}}\n")
	err = Run(context.Background(), []string{"--policy", path, "--nats-url", "nats://127.0.0.1:1"}, func(string) string { return "" }, io.Discard, &errOut)
	if err == nil || !strings.Contains(err.Error(), `no channel "pager"`) {
		t.Fatalf("Run = %v", err)
	}
}
