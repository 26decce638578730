package notify

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
)

// Severities of a message, for colours and priorities.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
	SeverityResolved = "resolved"
)

// Message is one notification, channel-neutral: every channel renders the
// same Title, Summary, Facts and Sections in its own format, and the
// machine-readable channels (webhook, Alertmanager) use Events and Report.
type Message struct {
	// ID is stable across retries of the same message: the Standard
	// Webhooks webhook-id and the e-mail Message-ID.
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Severity string    `json:"severity"`
	Title    string    `json:"title"`
	Summary  string    `json:"summary"`
	Facts    []Fact    `json:"facts,omitempty"`
	Sections []Section `json:"sections,omitempty"`
	// Events are the transitions of an alert or resend message.
	Events []Event   `json:"events,omitempty"`
	Report *Report   `json:"report,omitempty"`
	Link   string    `json:"link,omitempty"`
	At     time.Time `json:"at"`
	// ItemIDs are the alerts-stream items this message carries.
	ItemIDs []string `json:"-"`
}

// Fact is a name and a value ("Online": "61").
type Fact struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Section is a heading and its lines.
type Section struct {
	Heading string `json:"heading"`
	Lines   []Line `json:"lines"`
}

// Line is one device in a section: who (Subject) and what (Text).
type Line struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
}

// Composer turns items into messages for people in one time zone, linking
// to the status page.
type Composer struct {
	Loc  *time.Location
	Link string
}

// Compose groups items into messages: all alert items into one grouped
// alert message, and one message per report or escalation, in that order.
// Items of unknown type are skipped.
func (c Composer) Compose(items []Item, now time.Time) []Message {
	var events []Event
	var ids []string
	var out []Message
	for _, it := range items {
		switch {
		case it.Type == TypeAlert && it.Event != nil:
			events = append(events, *it.Event)
			ids = append(ids, it.ID)
		case (it.Type == TypeReport || it.Type == TypeEscalation) && it.Report != nil:
			m := c.Report(*it.Report)
			m.ID, m.ItemIDs = it.ID, []string{it.ID}
			out = append(out, m)
		}
	}
	if len(events) > 0 {
		m := c.Alerts(events, now)
		m.ID, m.ItemIDs = "alerts-"+hashOf(ids...), ids
		out = append([]Message{m}, out...)
	}
	return out
}

// Alerts composes one message for a group of transitions: raised conditions
// grouped by condition, then the resolved ones.
func (c Composer) Alerts(events []Event, now time.Time) Message {
	m := Message{Type: TypeAlert, Events: events, Link: c.Link, At: now}
	byCond := map[health.State][]Event{}
	var resolved []Event
	for _, e := range events {
		if e.Resolved {
			resolved = append(resolved, e)
		} else {
			byCond[e.Condition] = append(byCond[e.Condition], e)
		}
	}
	raised := len(events) - len(resolved)
	for _, cond := range health.Conditions() {
		es := byCond[cond]
		if len(es) == 0 {
			continue
		}
		sortEvents(es)
		s := Section{Heading: fmt.Sprintf("%s (%d)", capital(cond.Label()), len(es))}
		for _, e := range es {
			s.Lines = append(s.Lines, Line{Subject: deviceName(e.Device, e.Name, e.Site),
				Text: joinNonEmpty(" · ", "since "+c.clock(e.At, now), e.Detail)})
		}
		m.Sections = append(m.Sections, s)
	}
	if len(resolved) > 0 {
		sortEvents(resolved)
		s := Section{Heading: fmt.Sprintf("Resolved (%d)", len(resolved))}
		for _, e := range resolved {
			s.Lines = append(s.Lines, Line{Subject: deviceName(e.Device, e.Name, e.Site),
				Text: fmt.Sprintf("%s cleared at %s after %s", e.Condition.Label(), c.clock(e.At, now), health.Human(e.At.Sub(e.RaisedAt)))})
		}
		m.Sections = append(m.Sections, s)
	}
	switch {
	case raised == 0:
		m.Severity = SeverityResolved
	case hasCritical(events):
		m.Severity = SeverityCritical
	default:
		m.Severity = SeverityWarning
	}
	if len(events) == 1 {
		e := events[0]
		verb := "is " + e.Condition.Label()
		if e.Resolved {
			verb = "is no longer " + e.Condition.Label()
		}
		m.Title = fmt.Sprintf("%s %s", deviceName(e.Device, e.Name, e.Site), verb)
		m.Summary = joinNonEmpty(": ", m.Title, e.Detail)
		if e.Resolved {
			m.Summary = fmt.Sprintf("%s (%s cleared after %s).", m.Title, e.Condition.Label(), health.Human(e.At.Sub(e.RaisedAt)))
		}
		return m
	}
	var parts []string
	if raised > 0 {
		parts = append(parts, plural(raised, "new alert", "new alerts"))
	}
	if len(resolved) > 0 {
		parts = append(parts, plural(len(resolved), "resolved", "resolved"))
	}
	m.Title = "Devices: " + strings.Join(parts, ", ")
	m.Summary = fmt.Sprintf("%s across %s.", strings.Join(parts, " and "), plural(countDevices(events), "device", "devices"))
	return m
}

// Report composes a report or escalation message.
func (c Composer) Report(r Report) Message {
	m := Message{Type: TypeReport, Report: &r, Link: c.Link, At: r.At}
	for _, sc := range r.Counts {
		m.Facts = append(m.Facts, Fact{Name: capital(sc.State.Label()), Value: fmt.Sprint(sc.Count)})
	}
	online := 0
	for _, sc := range r.Counts {
		if sc.State == health.Online {
			online = sc.Count
		}
	}
	scope := "Fleet"
	if r.Team != "" {
		scope = "Devices of " + r.Team
	}
	lines := make([]Line, 0, len(r.Attention))
	for _, l := range r.Attention {
		sync := "never synced"
		if !l.LastSyncAt.IsZero() {
			sync = "last sync " + c.clock(l.LastSyncAt, r.At)
		}
		text := joinNonEmpty(" · ", l.State.Label()+" since "+c.clock(l.Since, r.At), sync)
		if l.RecordsWaiting > 0 {
			text += fmt.Sprintf(" · %d records waiting", l.RecordsWaiting)
		}
		text = joinNonEmpty(" · ", text, l.Detail)
		lines = append(lines, Line{Subject: deviceName(l.Device, l.Name, l.Site), Text: text})
	}
	if r.Kind == KindEscalation {
		m.Type, m.Severity = TypeEscalation, SeverityCritical
		m.Title = fmt.Sprintf("Payroll cut-off %s: %s with unsynced data", c.clock(r.Cutoff, time.Time{}), plural(len(r.Attention), "device", "devices"))
		m.Summary = fmt.Sprintf("%s before the payroll cut-off at %s, %s not synced within %s or have records waiting. Punches on them will be missing from payroll unless they sync.",
			health.Human(r.Cutoff.Sub(r.At)), c.clock(r.Cutoff, time.Time{}), plural(len(r.Attention), "device has", "devices have"), health.Human(r.UnsyncedAfter))
		m.Sections = []Section{{Heading: fmt.Sprintf("Unsynced (%d)", len(r.Attention)), Lines: lines}}
		return m
	}
	when := "Report"
	if r.Kind == KindOnDemand {
		when = "On-demand report"
	}
	m.Title = fmt.Sprintf("%s %s: %d of %d online", when, c.clock(r.At, time.Time{}), online, r.Total)
	m.Summary = fmt.Sprintf("%s: %d devices, %d online, %d need attention.", scope, r.Total, online, len(r.Attention))
	m.Severity = SeverityInfo
	if len(r.Attention) > 0 {
		m.Severity = SeverityWarning
		m.Sections = []Section{{Heading: fmt.Sprintf("Needs attention (%d)", len(r.Attention)), Lines: lines}}
	}
	return m
}

// clock writes t in the composer's zone: the time alone when it is on the
// same day as ref, else with the date.
func (c Composer) clock(t, ref time.Time) string {
	loc := c.Loc
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	if !ref.IsZero() {
		ry, rm, rd := ref.In(loc).Date()
		if y, m, d := lt.Date(); y == ry && m == rm && d == rd {
			return lt.Format("15:04 MST")
		}
	}
	return lt.Format("Mon 02 Jan 15:04 MST")
}

// Text renders m as plain text: the e-mail's text part and what
// `healthwatch report --channel stdout` prints.
func Text(m Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%s\n", m.Title, strings.Repeat("=", min(len([]rune(m.Title)), 72)))
	if m.Summary != "" {
		fmt.Fprintf(&b, "\n%s\n", m.Summary)
	}
	if len(m.Facts) > 0 {
		b.WriteString("\n")
		for _, f := range m.Facts {
			fmt.Fprintf(&b, "  %-22s %s\n", f.Name+":", f.Value)
		}
	}
	for _, s := range m.Sections {
		fmt.Fprintf(&b, "\n%s\n", s.Heading)
		for _, l := range s.Lines {
			fmt.Fprintf(&b, "  - %s: %s\n", l.Subject, l.Text)
		}
	}
	if m.Link != "" {
		fmt.Fprintf(&b, "\nStatus page: %s\n", m.Link)
	}
	return b.String()
}

func deviceName(serial, name, site string) string {
	s := serial
	if name != "" {
		s += " " + name
	}
	if site != "" {
		s += " (" + site + ")"
	}
	return s
}

func sortEvents(es []Event) {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Site != es[j].Site {
			return es[i].Site < es[j].Site
		}
		return es[i].Device < es[j].Device
	})
}

func hasCritical(es []Event) bool {
	for _, e := range es {
		if !e.Resolved && Critical(e.Condition) {
			return true
		}
	}
	return false
}

// Critical reports whether condition c stops punches from being collected
// (as opposed to a warning that they soon may be).
func Critical(c health.State) bool {
	return c == health.Disconnected || c == health.Unauthorized || c == health.NeverSeen
}

func countDevices(es []Event) int {
	seen := map[string]bool{}
	for _, e := range es {
		seen[e.Device] = true
	}
	return len(seen)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
