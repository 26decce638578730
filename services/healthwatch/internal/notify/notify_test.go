package notify

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
)

var now = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)

func dev(serial, site string, state health.State, since time.Time, mods ...func(*health.Device)) health.Device {
	d := health.Device{Serial: serial, Site: site, State: state, StateSince: since, Heartbeats: 1,
		LastSyncAt: since.Add(-time.Minute), Records: 100, RecordsAtSync: 100}
	if state != health.Online && state != health.NeverSeen {
		d.Conditions = map[health.State]health.Condition{state: {Active: true, Since: since, Detail: string(state) + " detail"}}
	}
	if state == health.NeverSeen {
		d.Heartbeats, d.LastSyncAt = 0, time.Time{}
	}
	for _, m := range mods {
		m(&d)
	}
	return d
}

func TestBuildReport(t *testing.T) {
	devices := []health.Device{
		dev("A1", "hq", health.Online, now.Add(-48*time.Hour)),
		dev("B2", "plant", health.Slow, now.Add(-time.Hour)),
		dev("A2", "hq", health.Disconnected, now.Add(-3*time.Hour), func(d *health.Device) { d.Records = 160 }),
		dev("A3", "hq", health.NeverSeen, now.Add(-5*time.Hour)),
		dev("A4", "hq", health.Online, now.Add(-time.Hour)),
	}
	r := BuildReport(KindScheduled, "support", devices, now, time.UTC)
	if diff := cmp.Diff([]StateCount{{health.NeverSeen, 1}, {health.Disconnected, 1}, {health.Slow, 1}, {health.Online, 2}}, r.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	var order []string
	for _, l := range r.Attention {
		order = append(order, l.Device)
	}
	if diff := cmp.Diff([]string{"A3", "A2", "B2"}, order); diff != "" {
		t.Errorf("attention order (-want +got):\n%s", diff)
	}
	if r.Attention[1].RecordsWaiting != 60 || r.Attention[1].Detail != "disconnected detail" {
		t.Errorf("A2 line = %+v", r.Attention[1])
	}

	m := Composer{Loc: time.UTC, Link: "https://hw.example"}.Report(r)
	if m.Title != "Report Fri 20 Nov 09:30 UTC: 2 of 5 online" || m.Severity != SeverityWarning || len(m.Sections) != 1 || len(m.Sections[0].Lines) != 3 {
		t.Errorf("report message = %+v", m)
	}
	if got := m.Sections[0].Lines[1].Text; !strings.Contains(got, "disconnected since 06:30 UTC") || !strings.Contains(got, "60 records waiting") || !strings.Contains(got, "last sync 06:29 UTC") {
		t.Errorf("line text = %q", got)
	}
	if got := m.Sections[0].Lines[0].Text; !strings.Contains(got, "never synced") {
		t.Errorf("never seen line = %q", got)
	}
	text := Text(m)
	for _, want := range []string{"Report Fri 20 Nov 09:30 UTC", "Never seen:", "A2 (hq): disconnected since", "Status page: https://hw.example"} {
		if !strings.Contains(text, want) {
			t.Errorf("Text() lacks %q:\n%s", want, text)
		}
	}
}

func TestBuildEscalation(t *testing.T) {
	devices := []health.Device{
		dev("OK", "hq", health.Online, now.Add(-time.Hour), func(d *health.Device) { d.LastSyncAt = now.Add(-10 * time.Minute) }),
		dev("STALE", "hq", health.Online, now.Add(-time.Hour), func(d *health.Device) { d.LastSyncAt = now.Add(-3 * time.Hour) }),
		dev("WAIT", "hq", health.Slow, now.Add(-time.Hour), func(d *health.Device) { d.LastSyncAt, d.Records = now.Add(-time.Minute), 130 }),
		dev("GONE", "hq", health.Disconnected, now.Add(-5*time.Hour), func(d *health.Device) { d.LastSyncAt = now.Add(-5 * time.Hour) }),
	}
	cutoff := now.Add(4 * time.Hour)
	r := BuildEscalation("payroll", devices, cutoff, 2*time.Hour, now, time.UTC)
	var got []string
	for _, l := range r.Attention {
		got = append(got, l.Device)
	}
	if diff := cmp.Diff([]string{"GONE", "WAIT", "STALE"}, got); diff != "" {
		t.Errorf("unsynced (-want +got):\n%s", diff)
	}
	m := Composer{Loc: time.UTC}.Report(r)
	if m.Type != TypeEscalation || m.Severity != SeverityCritical || !strings.Contains(m.Title, "3 devices with unsynced data") || !strings.Contains(m.Summary, "4h before the payroll cut-off") {
		t.Errorf("escalation message = %+v", m)
	}
}

func TestComposeGroupsAlerts(t *testing.T) {
	c := Composer{Loc: time.UTC}
	ev := func(serial string, cond health.State, resolved bool) Item {
		e := Event{Device: serial, Site: "hq", Condition: cond, Resolved: resolved, At: now, RaisedAt: now, Detail: "d"}
		if resolved {
			e.RaisedAt = now.Add(-15 * time.Minute)
		}
		return Item{ID: EventID(serial, cond, !resolved, now), Type: TypeAlert, Event: &e}
	}
	report := BuildReport(KindScheduled, "", nil, now, time.UTC)
	items := []Item{
		ev("D2", health.Disconnected, false),
		{ID: "report-1", Type: TypeReport, Report: &report},
		ev("D1", health.Disconnected, false),
		ev("S1", health.Slow, false),
		ev("R1", health.StorageFull, true),
	}
	msgs := c.Compose(items, now)
	if len(msgs) != 2 || msgs[0].Type != TypeAlert || msgs[1].Type != TypeReport || msgs[1].ID != "report-1" {
		t.Fatalf("Compose = %d messages: %+v", len(msgs), msgs)
	}
	a := msgs[0]
	var heads []string
	for _, s := range a.Sections {
		heads = append(heads, s.Heading)
	}
	if diff := cmp.Diff([]string{"Disconnected (2)", "Slow (1)", "Resolved (1)"}, heads); diff != "" {
		t.Errorf("sections (-want +got):\n%s", diff)
	}
	if a.Sections[0].Lines[0].Subject != "D1 (hq)" || a.Severity != SeverityCritical || a.Title != "Devices: 3 new alerts, 1 resolved" || len(a.ItemIDs) != 4 {
		t.Errorf("alert message = %+v", a)
	}
	if !strings.Contains(a.Sections[2].Lines[0].Text, "storage nearly full cleared at 09:30 UTC after 15m") {
		t.Errorf("resolved line = %q", a.Sections[2].Lines[0].Text)
	}
	// The id is stable for the same items.
	if again := c.Compose(items, now.Add(time.Minute)); again[0].ID != a.ID {
		t.Errorf("id changed: %s vs %s", again[0].ID, a.ID)
	}

	one := c.Alerts([]Event{*ev("R1", health.StorageFull, true).Event}, now)
	if one.Severity != SeverityResolved || one.Title != "R1 (hq) is no longer storage nearly full" {
		t.Errorf("single resolved = %+v", one)
	}
}

func TestIDs(t *testing.T) {
	a := EventID("D1", health.Slow, true, now)
	if a != EventID("D1", health.Slow, true, now.In(time.FixedZone("x", 3600))) {
		t.Error("EventID depends on the zone")
	}
	for _, other := range []string{EventID("D1", health.Slow, false, now), EventID("D2", health.Slow, true, now), EventID("D1", health.Slow, true, now.Add(time.Nanosecond))} {
		if other == a {
			t.Error("EventID collides")
		}
	}
	if ReportID(KindScheduled, "a", now) == ReportID(KindScheduled, "b", now) || EscalationID("p", now, time.Hour) == EscalationID("p", now, 2*time.Hour) {
		t.Error("report ids collide")
	}
}

type scripted struct {
	errs  []error
	calls []time.Time
}

func (s *scripted) Send(_ context.Context, _ Message) error {
	s.calls = append(s.calls, time.Now())
	if len(s.errs) == 0 {
		return nil
	}
	err := s.errs[0]
	s.errs = s.errs[1:]
	return err
}

func TestDeliver(t *testing.T) {
	fast := Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond, GiveUpAfter: 2 * time.Second}
	tests := []struct {
		name      string
		errs      []error
		retry     Retry
		wantCalls int
		wantErr   string
		permanent bool
	}{
		{"first try", nil, fast, 1, "", false},
		{"500 then 502 then ok", []error{&HTTPError{Status: 500}, &HTTPError{Status: 502}}, fast, 3, "", false},
		{"network error then ok", []error{errors.New("connection refused")}, fast, 2, "", false},
		{"400 is permanent", []error{&HTTPError{Status: 400, Body: "invalid_blocks"}}, fast, 1, "invalid_blocks", true},
		{"marked permanent", []error{Permanent(errors.New("bad secret"))}, fast, 1, "bad secret", true},
		{"budget spent", []error{&HTTPError{Status: 503}, &HTTPError{Status: 503}, &HTTPError{Status: 503}, &HTTPError{Status: 503}, &HTTPError{Status: 503}, &HTTPError{Status: 503}},
			Retry{Initial: 20 * time.Millisecond, Max: 20 * time.Millisecond, GiveUpAfter: 50 * time.Millisecond}, 0, "HTTP 503", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scripted{errs: tt.errs}
			var attempts []Attempt
			err := Deliver(context.Background(), s, Message{}, tt.retry, func(a Attempt) { attempts = append(attempts, a) })
			if tt.wantCalls > 0 && len(s.calls) != tt.wantCalls {
				t.Errorf("calls = %d, want %d", len(s.calls), tt.wantCalls)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Deliver = %v", err)
				}
				if len(attempts) != len(s.calls)-1 {
					t.Errorf("observed %d failed attempts for %d calls", len(attempts), len(s.calls))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Deliver = %v, want %q", err, tt.wantErr)
			}
			if IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v", IsPermanent(err), tt.permanent)
			}
			if len(attempts) != len(s.calls) {
				t.Errorf("observed %d attempts for %d calls", len(attempts), len(s.calls))
			}
		})
	}
}

func TestDeliverHonoursRetryAfter(t *testing.T) {
	s := &scripted{errs: []error{&HTTPError{Status: http.StatusTooManyRequests, RetryAfter: 300 * time.Millisecond}}}
	var waits []time.Duration
	err := Deliver(context.Background(), s, Message{}, Retry{Initial: time.Millisecond, Max: time.Millisecond, GiveUpAfter: time.Minute},
		func(a Attempt) { waits = append(waits, a.Wait) })
	if err != nil || len(s.calls) != 2 {
		t.Fatalf("Deliver = %v after %d calls", err, len(s.calls))
	}
	if len(waits) != 1 || waits[0] != 300*time.Millisecond {
		t.Errorf("waits = %v, want the Retry-After of 300ms", waits)
	}
	if gap := s.calls[1].Sub(s.calls[0]); gap < 300*time.Millisecond {
		t.Errorf("second try came %v after the first, before Retry-After", gap)
	}
}

func TestDeliverStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &scripted{errs: []error{&HTTPError{Status: 503, RetryAfter: time.Hour}}}
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	err := Deliver(ctx, s, Message{}, Retry{Initial: time.Millisecond, Max: time.Millisecond, GiveUpAfter: 2 * time.Hour}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver = %v, want context.Canceled", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{"-3", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"86400", MaxRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := ParseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	for status, want := range map[int]bool{408: true, 429: true, 500: true, 503: true, 400: false, 401: false, 404: false, 413: false} {
		if got := (&HTTPError{Status: status}).Retryable(); got != want {
			t.Errorf("Retryable(%d) = %v", status, got)
		}
	}
}
