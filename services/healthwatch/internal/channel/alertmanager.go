package channel

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
)

// Alertmanager posts alerts to Prometheus Alertmanager's API v2
// (POST /api/v2/alerts, a list of postableAlert). Alertmanager resolves an
// alert whose endsAt has passed, so a firing alert carries an endsAt a few
// resend intervals ahead and healthwatch re-sends every active alert each
// resend interval until it is resolved; the resolved notice sets endsAt to
// the moment it cleared. Reports are not alerts and are not sent here.
type Alertmanager struct {
	base        string
	resendEvery time.Duration
	http        httpPoster
	now         func() time.Time
}

// PostableAlert is Alertmanager's API v2 postableAlert.
type PostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Accepts alert and resend messages only.
func (a *Alertmanager) Accepts(t string) bool { return t == notify.TypeAlert || t == notify.TypeResend }

// ResendEvery is how often active alerts must be re-sent.
func (a *Alertmanager) ResendEvery() time.Duration { return a.resendEvery }

// Send posts m's events once.
func (a *Alertmanager) Send(ctx context.Context, m notify.Message) error {
	if !a.Accepts(m.Type) || len(m.Events) == 0 {
		return nil
	}
	if err := a.http.postJSON(ctx, AlertsURL(a.base), AlertmanagerPayload(m, a.now(), a.resendEvery), nil); err != nil {
		return fmt.Errorf("alertmanager: %w", err)
	}
	return nil
}

// AlertsURL is the API v2 alerts endpoint under base (given with or without
// the path).
func AlertsURL(base string) string {
	base = strings.TrimRight(base, "/")
	if strings.HasSuffix(base, "/api/v2/alerts") {
		return base
	}
	return base + "/api/v2/alerts"
}

// AlertmanagerPayload renders m's events as postable alerts at now. A firing
// alert ends 4 resend intervals after now unless re-sent, so that alerts of
// a healthwatch that died resolve by themselves.
func AlertmanagerPayload(m notify.Message, now time.Time, resendEvery time.Duration) []PostableAlert {
	out := make([]PostableAlert, 0, len(m.Events))
	for _, e := range m.Events {
		severity := "warning"
		if notify.Critical(e.Condition) {
			severity = "critical"
		}
		labels := map[string]string{
			"alertname": AlertName(e.Condition),
			"device":    e.Device,
			"condition": string(e.Condition),
			"severity":  severity,
			"service":   "punchflow-healthwatch",
		}
		if e.Site != "" {
			labels["site"] = e.Site
		}
		if e.Owner != "" {
			labels["team"] = e.Owner
		}
		ann := map[string]string{"summary": fmt.Sprintf("%s is %s", nameOf(e), e.Condition.Label())}
		if e.Detail != "" && !e.Resolved {
			ann["description"] = e.Detail
		}
		a := PostableAlert{Labels: labels, Annotations: ann, StartsAt: e.RaisedAt.UTC(), EndsAt: now.Add(4 * resendEvery).UTC()}
		if e.Resolved {
			a.EndsAt = e.At.UTC()
		}
		if m.Link != "" {
			a.GeneratorURL = m.Link + "/?q=" + url.QueryEscape(e.Device)
		}
		out = append(out, a)
	}
	return out
}

// AlertName is the alertname label of condition c, e.g.
// PunchflowDeviceDisconnected.
func AlertName(c health.State) string {
	var b strings.Builder
	b.WriteString("PunchflowDevice")
	for _, part := range strings.Split(string(c), "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

func nameOf(e notify.Event) string {
	if e.Name != "" {
		return e.Device + " (" + e.Name + ")"
	}
	return e.Device
}
