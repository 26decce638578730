package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
	"github.com/punchflow/punchflow/services/healthwatch/internal/schedule"
)

// example is the policy of the README.
const example = `
time_zone: Europe/Berlin
status_page_url: https://healthwatch.example.com/
thresholds:
  interval: 5m
  disconnected_after: 3
  slow_latency: 800ms
reports:
  times: ["08:00", "14:00"]
  catch_up: 90m
alerts:
  group_wait: 20s
payroll:
  cutoffs: ["monthly 25 12:00"]
  escalate_before: [48h, 4h]
  unsynced_after: 3h
sites:
  hq:
    team: facilities
  plant:
    thresholds:
      interval: 1m
      storage_full: 0.8
devices:
  - {serial: CQUJ000001, site: hq, name: Main entrance}
  - {serial: CQUJ000002, site: plant, name: Gate 2, team: facilities}
teams:
  support:
    channels: [slack-support, mail-support]
    alerts: [all]
    reports: true
  network:
    channels: [teams-network, alertmanager]
    alerts: [disconnected, slow]
  payroll:
    channels: [mail-payroll]
    payroll: true
  facilities:
    channels: [hooks]
    alerts: [storage_full, clock_drift]
    own_devices_only: true
    reports: true
channels:
  slack-support: {type: slack, url: {env: SLACK_URL}}
  teams-network: {type: teams, url: https://prod.example.logic.azure.com/workflows/abc/triggers/manual/paths/invoke}
  hooks: {type: webhook, url: https://hooks.example.com/punchflow, secret: {file: SECRET_FILE}}
  alertmanager: {type: alertmanager, url: http://alertmanager:9093, resend_every: 2m}
  mail-support:
    type: email
    smtp: smtp.example.com:587
    username: healthwatch
    password: {env: SMTP_PASSWORD}
    from: healthwatch@example.com
    to: [support@example.com]
  mail-payroll:
    type: email
    smtp: smtp.example.com:587
    from: healthwatch@example.com
    to: [payroll@example.com, "Payroll Lead <lead@example.com>"]
    retry: {initial: 2s, max: 30s, give_up_after: 5m}
`

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func parseExample(t *testing.T) *Policy {
	t.Helper()
	dir := t.TempDir()
	sf := filepath.Join(dir, "secret")
	if err := os.WriteFile(sf, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLACK_URL": "https://hooks.slack.com/services/T0/B0/x", "SMTP_PASSWORD": "pw"}
	p, err := Parse([]byte(strings.ReplaceAll(example, "SECRET_FILE", sf)), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseExample(t *testing.T) {
	p := parseExample(t)
	if p.Zone.String() != "Europe/Berlin" || p.StatusURL != "https://healthwatch.example.com" {
		t.Errorf("zone %v url %q", p.Zone, p.StatusURL)
	}
	if diff := cmp.Diff([]schedule.Clock{{Hour: 8}, {Hour: 14}}, p.Reports); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	if p.CatchUp != 90*time.Minute || p.GroupWait != 20*time.Second || p.UnsyncedAfter != 3*time.Hour {
		t.Errorf("catch_up %v group_wait %v unsynced_after %v", p.CatchUp, p.GroupWait, p.UnsyncedAfter)
	}
	if diff := cmp.Diff([]time.Duration{48 * time.Hour, 4 * time.Hour}, p.EscalateBefore); diff != "" || len(p.Cutoffs) != 1 {
		t.Errorf("payroll: %v %v", p.Cutoffs, diff)
	}

	// Thresholds: defaults, then the file's, then the site's.
	hq, plant, other := p.Thresholds("hq"), p.Thresholds("plant"), p.Thresholds("elsewhere")
	if hq.Interval != 5*time.Minute || hq.SlowLatency != 800*time.Millisecond || hq.StorageFull != 0.9 {
		t.Errorf("hq thresholds %+v", hq)
	}
	if plant.Interval != time.Minute || plant.SlowLatency != 800*time.Millisecond || plant.StorageFull != 0.8 || plant.StorageClear != 0.75 {
		t.Errorf("plant thresholds %+v", plant)
	}
	if other != p.Defaults {
		t.Errorf("unknown site should get the defaults")
	}

	// Secrets resolved from the environment and from a file.
	if p.Channels["slack-support"].URL != "https://hooks.slack.com/services/T0/B0/x" || p.Channels["hooks"].Secret != secret || p.Channels["mail-support"].Password != "pw" {
		t.Errorf("secrets not resolved: %+v", p.Channels)
	}
	if s := p.Channels["slack-support"].String(); strings.Contains(s, "services") || !strings.Contains(s, "hooks.slack.com") {
		t.Errorf("String() leaks or hides too much: %q", s)
	}
	if c := p.Channels["mail-support"]; c.TLS != "starttls" || c.Retry.GiveUpAfter != 10*time.Minute {
		t.Errorf("email defaults: %+v", c)
	}
	if c := p.Channels["mail-payroll"]; c.Retry != (Retry{Initial: 2 * time.Second, Max: 30 * time.Second, GiveUpAfter: 5 * time.Minute}) {
		t.Errorf("retry: %+v", c.Retry)
	}
	if p.Channels["alertmanager"].ResendEvery != 2*time.Minute {
		t.Errorf("resend_every %v", p.Channels["alertmanager"].ResendEvery)
	}
}

func TestRouting(t *testing.T) {
	p := parseExample(t)
	tests := []struct {
		name        string
		cond        health.State
		serial      string
		site        string
		wantTeams   []string
		wantChannel []string
	}{
		{"disconnected at hq", health.Disconnected, "CQUJ000001", "hq", []string{"network", "support"},
			[]string{"alertmanager", "mail-support", "slack-support", "teams-network"}},
		{"storage at hq: facilities owns the site", health.StorageFull, "CQUJ000001", "hq", []string{"facilities", "support"},
			[]string{"hooks", "mail-support", "slack-support"}},
		{"storage on a device facilities owns elsewhere", health.StorageFull, "CQUJ000002", "plant", []string{"facilities", "support"},
			[]string{"hooks", "mail-support", "slack-support"}},
		{"storage on an unconfigured device", health.StorageFull, "X", "plant", []string{"support"},
			[]string{"mail-support", "slack-support"}},
		{"unauthorized goes to support only", health.Unauthorized, "CQUJ000001", "hq", []string{"support"},
			[]string{"mail-support", "slack-support"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			teams := p.AlertTeams(tt.cond, tt.site, p.Owner(tt.serial, tt.site))
			if diff := cmp.Diff(tt.wantTeams, teams); diff != "" {
				t.Errorf("teams (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantChannel, p.ChannelsOf(teams)); diff != "" {
				t.Errorf("channels (-want +got):\n%s", diff)
			}
		})
	}
	if diff := cmp.Diff([]string{"facilities", "support"}, p.ReportTeams()); diff != "" {
		t.Errorf("report teams: %s", diff)
	}
	if diff := cmp.Diff([]string{"payroll"}, p.PayrollTeams()); diff != "" {
		t.Errorf("payroll teams: %s", diff)
	}
	if diff := cmp.Diff([]string{"CQUJ000001", "CQUJ000002"}, p.Serials()); diff != "" {
		t.Errorf("serials: %s", diff)
	}
}

func TestDefault(t *testing.T) {
	p := Default()
	if p.Zone != time.UTC || len(p.Reports) != 2 || len(p.Channels) != 0 || p.Defaults != health.Defaults() {
		t.Fatalf("Default() = %+v", p)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown key", "time_zone: UTC\nthresholds: {intervall: 5m}\n", []string{"intervall"}},
		{"bad zone", "time_zone: Mars/Olympus\n", []string{"time_zone", "IANA"}},
		{"bad duration", "thresholds: {interval: five minutes}\n", []string{"not a duration"}},
		{"bad thresholds", "thresholds: {storage_full: 0.5, storage_clear: 0.7}\nsites: {hq: {thresholds: {interval: 0s}}}\n",
			[]string{"thresholds: thresholds: storage_clear", "sites.hq.thresholds", "interval must be positive"}},
		{"bad report time", "reports: {times: ['8am']}\n", []string{"reports.times", "HH:MM"}},
		{"bad cutoff", "payroll: {cutoffs: ['yearly']}\n", []string{"payroll.cutoffs"}},
		{"team without channels and unknown condition", "teams: {ops: {alerts: [asleep]}}\n",
			[]string{"teams.ops: channels is empty", `"asleep" is not a condition`}},
		{"team names an unknown channel", "teams: {ops: {channels: [pager]}}\n", []string{`no channel "pager"`}},
		{"unknown channel type", "channels: {x: {type: pager, url: http://x}}\n", []string{"use slack, teams, webhook, alertmanager or email"}},
		{"webhook secret", "channels: {x: {type: webhook, url: http://x, secret: hunter2}}\n", []string{"whsec_"}},
		{"webhook secret not base64", "channels: {x: {type: webhook, url: http://x, secret: whsec_!!!}}\n", []string{"not base64"}},
		{"slack url", "channels: {x: {type: slack, url: hooks.slack.com}}\n", []string{"channels.x.url"}},
		{"missing env secret", "channels: {x: {type: slack, url: {env: NOPE}}}\n", []string{"NOPE is empty or unset"}},
		{"secret with both", "channels: {x: {type: slack, url: {env: A, file: B}}}\n", []string{"exactly one of env or file"}},
		{"email", "channels: {m: {type: email, smtp: mail, from: nobody, tls: ssl}}\n",
			[]string{"smtp must be host:port", "from \"nobody\"", "to needs at least one", "tls must be"}},
		{"devices", "devices: [{site: hq}, {serial: A, team: ghosts}, {serial: B}, {serial: B}]\n",
			[]string{"devices[0]: serial is required", `no team "ghosts"`, `"B" is listed twice`}},
		{"site team", "sites: {hq: {team: ghosts}}\n", []string{"sites.hq.team"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), func(string) string { return "" })
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte("time_zone: Nowhere/Land\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, os.Getenv); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load = %v, want an error naming the file", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), os.Getenv); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

func TestDecodeWebhookSecret(t *testing.T) {
	key, err := DecodeWebhookSecret(secret)
	if err != nil || len(key) != 24 {
		t.Fatalf("DecodeWebhookSecret = %d bytes, %v", len(key), err)
	}
	if _, err := DecodeWebhookSecret("whsec_c2hvcnQ="); err == nil || !strings.Contains(err.Error(), "24 to 64") {
		t.Fatalf("short key: %v", err)
	}
}

// TestExampleFile keeps the documented example valid.
func TestExampleFile(t *testing.T) {
	b, err := os.ReadFile("../../policy.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	url := filepath.Join(t.TempDir(), "teams-url")
	if err := os.WriteFile(url, []byte("https://prod.example.logic.azure.com/workflows/x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := strings.ReplaceAll(string(b), "/run/secrets/teams-webhook-url", url)
	env := map[string]string{"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x", "HEALTHWATCH_WEBHOOK_SECRET": secret, "SMTP_PASSWORD": "pw"}
	p, err := Parse([]byte(doc), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Channels) != 6 || len(p.Teams) != 4 || len(p.Devices) != 2 || p.Channels["teams-network"].URL != "https://prod.example.logic.azure.com/workflows/x" {
		t.Errorf("example parsed to %d channels, %d teams, %d devices", len(p.Channels), len(p.Teams), len(p.Devices))
	}
}
