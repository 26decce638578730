// Package policy is healthwatch's alerting policy: the configured devices,
// the thresholds of each site, the teams and what each one hears about, the
// channels that reach them, the report schedule and the payroll cut-offs. It
// is read once from a YAML file and validated as a whole, so every mistake
// is reported with what to fix before anything starts.
package policy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // zones work in minimal images without /usr/share/zoneinfo

	"gopkg.in/yaml.v3"

	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
	"github.com/punchflow/punchflow/services/healthwatch/internal/schedule"
)

// Channel types.
const (
	Slack        = "slack"
	Teams        = "teams"
	Webhook      = "webhook"
	Alertmanager = "alertmanager"
	Email        = "email"
)

// All is the alerts entry that means every condition.
const All = "all"

// Policy is a validated policy. Build it with Load or Parse; the zero value
// is not usable, Default is.
type Policy struct {
	// Zone is where report times and payroll cut-offs are read.
	Zone *time.Location
	// StatusURL links messages to the status page ("" for no link).
	StatusURL string
	// Reports are the daily report times in Zone.
	Reports []schedule.Clock
	// CatchUp is how late a missed report or escalation may still be sent
	// (after a restart, say).
	CatchUp time.Duration
	// GroupWait is how long alerts are collected into one message.
	GroupWait time.Duration
	// AlertMaxAge: transitions older than this when they are found (a replay
	// of old heartbeats) are recorded but not alerted.
	AlertMaxAge time.Duration

	Cutoffs        []schedule.Cutoff
	EscalateBefore []time.Duration
	UnsyncedAfter  time.Duration

	Defaults health.Thresholds
	Sites    map[string]Site
	Devices  map[string]Device // by serial
	Teams    map[string]Team
	Channels map[string]Channel
}

// Site holds one site's settings.
type Site struct {
	Thresholds health.Thresholds
	// Team owns the site's devices unless a device names another.
	Team string
}

// Device is a configured device.
type Device struct {
	Serial string
	Name   string
	Site   string
	Team   string
}

// Team is who is told about what.
type Team struct {
	Name     string
	Channels []string
	// Alerts are the conditions the team is alerted about (empty: none).
	Alerts []health.State
	// Sites limits the team to these sites (empty: every site).
	Sites []string
	// OwnDevicesOnly limits the team to devices it owns (a device's team,
	// or its site's).
	OwnDevicesOnly bool
	Reports        bool
	Payroll        bool
}

// Channel is one destination. Secret values (URLs with tokens, signing
// secrets, passwords) come from the file, an environment variable or a
// file of their own, and String never shows them.
type Channel struct {
	Name    string
	Type    string
	URL     string
	Secret  string // webhook: "whsec_<base64>"
	Timeout time.Duration
	Retry   Retry
	// Alertmanager.
	ResendEvery time.Duration
	// Email.
	SMTPAddr string
	TLS      string // "starttls" (default), "tls" or "none"
	Username string
	Password string
	From     string
	To       []string
}

// Retry is a channel's retry budget: exponential backoff from Initial,
// capped at Max, given up after GiveUpAfter (the notification then waits in
// the alerts stream and is tried again later; nothing is lost).
type Retry struct {
	Initial     time.Duration
	Max         time.Duration
	GiveUpAfter time.Duration
}

// String describes the channel without its secrets.
func (c Channel) String() string {
	switch c.Type {
	case Email:
		return fmt.Sprintf("%s (email via %s to %s)", c.Name, c.SMTPAddr, strings.Join(c.To, ", "))
	default:
		host := "?"
		if u, err := url.Parse(c.URL); err == nil {
			host = u.Host
		}
		return fmt.Sprintf("%s (%s to %s)", c.Name, c.Type, host)
	}
}

// Default is the policy without a file: no configured devices, no channels,
// default thresholds, reports at 08:00 and 14:00 UTC.
func Default() *Policy {
	p, err := Parse(nil, func(string) string { return "" })
	if err != nil {
		panic("policy: the built-in default does not validate: " + err.Error())
	}
	return p
}

// Load reads and validates the policy file at path; getenv resolves
// {env: NAME} secrets.
func Load(path string, getenv func(string) string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	p, err := Parse(b, getenv)
	if err != nil {
		return nil, fmt.Errorf("policy file %s: %w", path, err)
	}
	return p, nil
}

// Parse validates a policy document. Every problem is reported, each with
// the setting it concerns.
func Parse(doc []byte, getenv func(string) string) (*Policy, error) {
	var f file
	if len(bytes.TrimSpace(doc)) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(doc))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("not a valid policy (keys are listed in the README): %w", err)
		}
	}
	v := &validator{getenv: getenv}
	p := v.build(f)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return p, nil
}

// Thresholds returns the thresholds of site (the defaults for an unknown
// site).
func (p *Policy) Thresholds(site string) health.Thresholds {
	if s, ok := p.Sites[site]; ok {
		return s.Thresholds
	}
	return p.Defaults
}

// Owner is the team that owns a device: its own team, else its site's.
func (p *Policy) Owner(serial, site string) string {
	if d, ok := p.Devices[serial]; ok && d.Team != "" {
		return d.Team
	}
	return p.Sites[site].Team
}

// InScope reports whether team sees a device of site owned by owner.
func (t Team) InScope(site, owner string) bool {
	if len(t.Sites) > 0 && !slices.Contains(t.Sites, site) {
		return false
	}
	return !t.OwnDevicesOnly || owner == t.Name
}

// AlertTeams returns the teams, sorted, alerted when condition c of a device
// of site owned by owner is raised or cleared.
func (p *Policy) AlertTeams(c health.State, site, owner string) []string {
	var out []string
	for _, t := range p.sortedTeams() {
		if slices.Contains(t.Alerts, c) && t.InScope(site, owner) {
			out = append(out, t.Name)
		}
	}
	return out
}

// ReportTeams returns the teams that receive scheduled reports, sorted.
func (p *Policy) ReportTeams() []string { return p.teamsWhere(func(t Team) bool { return t.Reports }) }

// PayrollTeams returns the teams that receive payroll escalations, sorted.
func (p *Policy) PayrollTeams() []string { return p.teamsWhere(func(t Team) bool { return t.Payroll }) }

// ChannelsOf returns the channels of the given teams, without repeats, sorted.
func (p *Policy) ChannelsOf(teams []string) []string {
	var out []string
	for _, name := range teams {
		for _, c := range p.Teams[name].Channels {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ChannelNames returns every channel's name, sorted.
func (p *Policy) ChannelNames() []string {
	out := make([]string, 0, len(p.Channels))
	for n := range p.Channels {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Serials returns the configured devices' serials, sorted.
func (p *Policy) Serials() []string {
	out := make([]string, 0, len(p.Devices))
	for s := range p.Devices {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func (p *Policy) teamsWhere(f func(Team) bool) []string {
	var out []string
	for _, t := range p.sortedTeams() {
		if f(t) {
			out = append(out, t.Name)
		}
	}
	return out
}

func (p *Policy) sortedTeams() []Team {
	out := make([]Team, 0, len(p.Teams))
	for _, t := range p.Teams {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ---- the file ----

type file struct {
	TimeZone      string              `yaml:"time_zone"`
	StatusPageURL string              `yaml:"status_page_url"`
	Thresholds    thresholds          `yaml:"thresholds"`
	Sites         map[string]siteFile `yaml:"sites"`
	Devices       []deviceFile        `yaml:"devices"`
	Teams         map[string]teamFile `yaml:"teams"`
	Channels      map[string]chanFile `yaml:"channels"`
	Reports       struct {
		Times   []string  `yaml:"times"`
		CatchUp *Duration `yaml:"catch_up"`
	} `yaml:"reports"`
	Alerts struct {
		GroupWait *Duration `yaml:"group_wait"`
		MaxAge    *Duration `yaml:"max_age"`
	} `yaml:"alerts"`
	Payroll struct {
		Cutoffs        []string   `yaml:"cutoffs"`
		EscalateBefore []Duration `yaml:"escalate_before"`
		UnsyncedAfter  *Duration  `yaml:"unsynced_after"`
	} `yaml:"payroll"`
}

type thresholds struct {
	Interval          *Duration `yaml:"interval"`
	DisconnectedAfter *int      `yaml:"disconnected_after"`
	SlowLatency       *Duration `yaml:"slow_latency"`
	SlowFailureRatio  *float64  `yaml:"slow_failure_ratio"`
	SlowWindow        *int      `yaml:"slow_window"`
	StorageFull       *float64  `yaml:"storage_full"`
	StorageClear      *float64  `yaml:"storage_clear"`
	ClockDrift        *Duration `yaml:"clock_drift"`
	ClockDriftClear   *Duration `yaml:"clock_drift_clear"`
	RaiseAfter        *int      `yaml:"raise_after"`
	ClearAfter        *int      `yaml:"clear_after"`
}

type siteFile struct {
	Team       string     `yaml:"team"`
	Thresholds thresholds `yaml:"thresholds"`
}

type deviceFile struct {
	Serial string `yaml:"serial"`
	Name   string `yaml:"name"`
	Site   string `yaml:"site"`
	Team   string `yaml:"team"`
}

type teamFile struct {
	Channels       []string `yaml:"channels"`
	Alerts         []string `yaml:"alerts"`
	Sites          []string `yaml:"sites"`
	OwnDevicesOnly bool     `yaml:"own_devices_only"`
	Reports        bool     `yaml:"reports"`
	Payroll        bool     `yaml:"payroll"`
}

type chanFile struct {
	Type        string    `yaml:"type"`
	URL         Secret    `yaml:"url"`
	Secret      Secret    `yaml:"secret"`
	Timeout     *Duration `yaml:"timeout"`
	ResendEvery *Duration `yaml:"resend_every"`
	Retry       struct {
		Initial     *Duration `yaml:"initial"`
		Max         *Duration `yaml:"max"`
		GiveUpAfter *Duration `yaml:"give_up_after"`
	} `yaml:"retry"`
	SMTP     string   `yaml:"smtp"`
	TLS      string   `yaml:"tls"`
	Username string   `yaml:"username"`
	Password Secret   `yaml:"password"`
	From     string   `yaml:"from"`
	To       []string `yaml:"to"`
}

// Duration is a time.Duration written as Go writes it ("90s", "5m", "1h30m").
type Duration time.Duration

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (write it like 90s, 5m or 1h30m)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// Secret is a value given inline, as {env: NAME} (an environment variable)
// or as {file: PATH} (a file's contents, trimmed).
type Secret struct {
	Value string
	Env   string
	File  string
}

// UnmarshalYAML reads either form.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&s.Value)
	}
	var m struct {
		Env  string `yaml:"env"`
		File string `yaml:"file"`
	}
	if err := n.Decode(&m); err != nil {
		return fmt.Errorf("line %d: a secret is a string, {env: NAME} or {file: PATH}: %w", n.Line, err)
	}
	if (m.Env == "") == (m.File == "") {
		return fmt.Errorf("line %d: a secret takes exactly one of env or file", n.Line)
	}
	s.Env, s.File = m.Env, m.File
	return nil
}

func (s Secret) resolve(getenv func(string) string) (string, error) {
	switch {
	case s.Env != "":
		v := getenv(s.Env)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty or unset", s.Env)
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	return s.Value, nil
}

// ---- validation ----

type validator struct {
	getenv func(string) string
	errs   []error
}

func (v *validator) errf(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf(format, args...))
}

func (v *validator) build(f file) *Policy {
	p := &Policy{
		Zone:          time.UTC,
		StatusURL:     strings.TrimRight(f.StatusPageURL, "/"),
		CatchUp:       durOr(f.Reports.CatchUp, time.Hour),
		GroupWait:     durOr(f.Alerts.GroupWait, 30*time.Second),
		AlertMaxAge:   durOr(f.Alerts.MaxAge, time.Hour),
		UnsyncedAfter: durOr(f.Payroll.UnsyncedAfter, 2*time.Hour),
		Sites:         map[string]Site{},
		Devices:       map[string]Device{},
		Teams:         map[string]Team{},
		Channels:      map[string]Channel{},
	}
	if f.TimeZone != "" {
		loc, err := time.LoadLocation(f.TimeZone)
		if err != nil {
			v.errf("time_zone %q is not a known zone (use an IANA name such as Europe/Berlin): %v", f.TimeZone, err)
		} else {
			p.Zone = loc
		}
	}
	if p.StatusURL != "" {
		if u, err := url.Parse(p.StatusURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			v.errf("status_page_url %q must be an http or https URL", f.StatusPageURL)
		}
	}
	if p.GroupWait < 0 || p.GroupWait > 10*time.Minute {
		v.errf("alerts.group_wait %v must be between 0 and 10m", p.GroupWait)
	}
	if p.AlertMaxAge <= 0 {
		v.errf("alerts.max_age must be positive")
	}
	if p.CatchUp < 0 {
		v.errf("reports.catch_up must not be negative")
	}

	times := f.Reports.Times
	if times == nil {
		times = []string{"08:00", "14:00"}
	}
	for _, s := range times {
		c, err := schedule.ParseClock(s)
		if err != nil {
			v.errf("reports.times: %v", err)
			continue
		}
		p.Reports = append(p.Reports, c)
	}
	for _, s := range f.Payroll.Cutoffs {
		c, err := schedule.ParseCutoff(s)
		if err != nil {
			v.errf("payroll.cutoffs: %v", err)
			continue
		}
		p.Cutoffs = append(p.Cutoffs, c)
	}
	for _, d := range f.Payroll.EscalateBefore {
		if d <= 0 {
			v.errf("payroll.escalate_before: %v must be positive", time.Duration(d))
		}
		p.EscalateBefore = append(p.EscalateBefore, time.Duration(d))
	}
	if len(p.Cutoffs) > 0 && len(p.EscalateBefore) == 0 {
		p.EscalateBefore = []time.Duration{24 * time.Hour, 4 * time.Hour}
	}

	p.Defaults = v.thresholds("thresholds", health.Defaults(), f.Thresholds)
	for name, s := range f.Sites {
		p.Sites[name] = Site{Team: s.Team, Thresholds: v.thresholds("sites."+name+".thresholds", p.Defaults, s.Thresholds)}
	}

	for name, c := range f.Channels {
		if ch, ok := v.channel(name, c); ok {
			p.Channels[name] = ch
		}
	}
	for name, t := range f.Teams {
		p.Teams[name] = v.team(name, t, p.Channels)
	}
	for name, s := range p.Sites {
		if s.Team != "" && !v.hasTeam(p, s.Team) {
			v.errf("sites.%s.team: no team %q (teams: %s)", name, s.Team, keys(p.Teams))
		}
	}
	for i, d := range f.Devices {
		where := fmt.Sprintf("devices[%d]", i)
		switch {
		case d.Serial == "":
			v.errf("%s: serial is required", where)
			continue
		case p.Devices[d.Serial] != (Device{}):
			v.errf("%s: serial %q is listed twice", where, d.Serial)
			continue
		}
		if d.Team != "" && !v.hasTeam(p, d.Team) {
			v.errf("%s (%s): no team %q (teams: %s)", where, d.Serial, d.Team, keys(p.Teams))
		}
		p.Devices[d.Serial] = Device(d)
	}
	return p
}

func (v *validator) hasTeam(p *Policy, name string) bool { _, ok := p.Teams[name]; return ok }

func (v *validator) thresholds(where string, base health.Thresholds, t thresholds) health.Thresholds {
	th := base
	setDur(&th.Interval, t.Interval)
	setInt(&th.DisconnectedAfter, t.DisconnectedAfter)
	setDur(&th.SlowLatency, t.SlowLatency)
	setFloat(&th.SlowFailureRatio, t.SlowFailureRatio)
	setInt(&th.SlowWindow, t.SlowWindow)
	setFloat(&th.StorageFull, t.StorageFull)
	if t.StorageFull != nil && t.StorageClear == nil {
		th.StorageClear = min(th.StorageClear, th.StorageFull-0.05)
	}
	setFloat(&th.StorageClear, t.StorageClear)
	setDur(&th.ClockDrift, t.ClockDrift)
	if t.ClockDrift != nil && t.ClockDriftClear == nil {
		th.ClockDriftClear = min(th.ClockDriftClear, th.ClockDrift/2)
	}
	setDur(&th.ClockDriftClear, t.ClockDriftClear)
	setInt(&th.RaiseAfter, t.RaiseAfter)
	setInt(&th.ClearAfter, t.ClearAfter)
	if err := th.Validate(); err != nil {
		v.errf("%s: %v", where, err)
	}
	return th
}

func (v *validator) team(name string, t teamFile, channels map[string]Channel) Team {
	out := Team{Name: name, Channels: t.Channels, Sites: t.Sites, OwnDevicesOnly: t.OwnDevicesOnly, Reports: t.Reports, Payroll: t.Payroll}
	if len(t.Channels) == 0 {
		v.errf("teams.%s: channels is empty (name at least one of: %s)", name, keys(channels))
	}
	for _, c := range t.Channels {
		if _, ok := channels[c]; !ok {
			v.errf("teams.%s.channels: no channel %q (channels: %s)", name, c, keys(channels))
		}
	}
	for _, a := range t.Alerts {
		if a == All {
			out.Alerts = health.Conditions()
			continue
		}
		s := health.State(a)
		if !slices.Contains(health.Conditions(), s) {
			v.errf("teams.%s.alerts: %q is not a condition (use all or any of %v)", name, a, health.Conditions())
			continue
		}
		if !slices.Contains(out.Alerts, s) {
			out.Alerts = append(out.Alerts, s)
		}
	}
	return out
}

func (v *validator) channel(name string, c chanFile) (Channel, bool) {
	where := "channels." + name
	out := Channel{Name: name, Type: c.Type, Timeout: durOr(c.Timeout, 10*time.Second),
		Retry:       Retry{Initial: durOr(c.Retry.Initial, time.Second), Max: durOr(c.Retry.Max, time.Minute), GiveUpAfter: durOr(c.Retry.GiveUpAfter, 10*time.Minute)},
		ResendEvery: durOr(c.ResendEvery, time.Minute), SMTPAddr: c.SMTP, TLS: c.TLS, Username: c.Username, From: c.From, To: c.To}
	n := len(v.errs)
	secret := func(field string, s Secret) string {
		val, err := s.resolve(v.getenv)
		if err != nil {
			v.errf("%s.%s: %v", where, field, err)
		}
		return val
	}
	out.URL = secret("url", c.URL)
	out.Secret = secret("secret", c.Secret)
	out.Password = secret("password", c.Password)
	if out.Retry.Initial <= 0 || out.Retry.Max < out.Retry.Initial || out.Retry.GiveUpAfter <= 0 {
		v.errf("%s.retry: initial must be positive, max at least initial, give_up_after positive", where)
	}
	if out.Timeout <= 0 {
		v.errf("%s.timeout must be positive", where)
	}
	switch c.Type {
	case Slack, Teams, Webhook, Alertmanager:
		u, err := url.Parse(out.URL)
		if out.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errf("%s.url must be an http or https URL", where)
		}
		if c.Type == Webhook {
			if !strings.HasPrefix(out.Secret, "whsec_") {
				v.errf("%s.secret must be a Standard Webhooks secret: whsec_ followed by base64 of 24 to 64 random bytes", where)
			} else if _, err := DecodeWebhookSecret(out.Secret); err != nil {
				v.errf("%s.secret: %v", where, err)
			}
		}
		if c.Type == Alertmanager && out.ResendEvery < time.Second {
			v.errf("%s.resend_every must be at least 1s", where)
		}
	case Email:
		if out.SMTPAddr == "" || !strings.Contains(out.SMTPAddr, ":") {
			v.errf("%s.smtp must be host:port of the mail server", where)
		}
		switch out.TLS {
		case "":
			out.TLS = "starttls"
		case "starttls", "tls", "none":
		default:
			v.errf("%s.tls must be starttls, tls or none", where)
		}
		if _, err := mail.ParseAddress(out.From); err != nil {
			v.errf("%s.from %q is not a mail address", where, out.From)
		}
		if len(out.To) == 0 {
			v.errf("%s.to needs at least one address", where)
		}
		for _, a := range out.To {
			if _, err := mail.ParseAddress(a); err != nil {
				v.errf("%s.to: %q is not a mail address", where, a)
			}
		}
		if out.Password != "" && out.Username == "" {
			v.errf("%s: password without username", where)
		}
	default:
		v.errf("%s.type %q: use slack, teams, webhook, alertmanager or email", where, c.Type)
	}
	return out, len(v.errs) == n
}

// DecodeWebhookSecret returns the signing key of a Standard Webhooks
// secret: the base64 after "whsec_".
func DecodeWebhookSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, errors.New("a webhook secret starts with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("the part after whsec_ is not base64: %w", err)
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("the key is %d bytes; Standard Webhooks asks for 24 to 64", len(key))
	}
	return key, nil
}

func durOr(d *Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return time.Duration(*d)
}

func setDur(dst *time.Duration, v *Duration) {
	if v != nil {
		*dst = time.Duration(*v)
	}
}

func setInt(dst *int, v *int) {
	if v != nil {
		*dst = *v
	}
}

func setFloat(dst *float64, v *float64) {
	if v != nil {
		*dst = *v
	}
}

func keys[V any](m map[string]V) string {
	if len(m) == 0 {
		return "none defined"
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
