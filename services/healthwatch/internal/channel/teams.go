package channel

import (
	"context"
	"fmt"

	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
)

// Teams posts to a Microsoft Teams workflow webhook (the Workflows app's
// "When a Teams webhook request is received" trigger, which replaced the
// Office 365 connectors): a message with one Adaptive Card attachment.
type Teams struct {
	url  string
	http httpPoster
}

// teamsMaxLines keeps a card well under Teams' 28 KB message limit.
const teamsMaxLines = 60

// TeamsMessage is the workflow webhook payload.
type TeamsMessage struct {
	Type        string            `json:"type"`
	Attachments []TeamsAttachment `json:"attachments"`
}

// TeamsAttachment carries the card.
type TeamsAttachment struct {
	ContentType string       `json:"contentType"`
	ContentURL  *string      `json:"contentUrl"`
	Content     AdaptiveCard `json:"content"`
}

// AdaptiveCard is the card (adaptivecards.io/schemas/adaptive-card.json).
type AdaptiveCard struct {
	Schema  string           `json:"$schema"`
	Type    string           `json:"type"`
	Version string           `json:"version"`
	Body    []map[string]any `json:"body"`
	Actions []map[string]any `json:"actions,omitempty"`
	MSTeams map[string]any   `json:"msteams,omitempty"`
}

// Accepts every message type.
func (t *Teams) Accepts(s string) bool { return acceptsAll(s) }

// Send posts m once.
func (t *Teams) Send(ctx context.Context, m notify.Message) error {
	if err := t.http.postJSON(ctx, t.url, TeamsPayload(m), nil); err != nil {
		return fmt.Errorf("teams: %w", err)
	}
	return nil
}

// TeamsPayload renders m as an Adaptive Card 1.4 (the version Teams renders
// on every client) in the envelope the workflow trigger expects.
func TeamsPayload(m notify.Message) TeamsMessage {
	color := map[string]string{notify.SeverityCritical: "Attention", notify.SeverityWarning: "Warning", notify.SeverityResolved: "Good"}[m.Severity]
	if color == "" {
		color = "Default"
	}
	text := func(s string, extra map[string]any) map[string]any {
		b := map[string]any{"type": "TextBlock", "text": s, "wrap": true}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	body := []map[string]any{
		text(m.Title, map[string]any{"size": "Large", "weight": "Bolder", "color": color, "style": "heading"}),
	}
	if m.Summary != "" {
		body = append(body, text(m.Summary, nil))
	}
	if len(m.Facts) > 0 {
		var facts []map[string]any
		for _, f := range m.Facts {
			facts = append(facts, map[string]any{"title": f.Name, "value": f.Value})
		}
		body = append(body, map[string]any{"type": "FactSet", "facts": facts})
	}
	lines := 0
	omitted := 0
	for _, sec := range m.Sections {
		if lines >= teamsMaxLines {
			omitted += len(sec.Lines)
			continue
		}
		body = append(body, text(sec.Heading, map[string]any{"weight": "Bolder", "separator": true, "spacing": "Medium"}))
		var facts []map[string]any
		for i, l := range sec.Lines {
			if lines >= teamsMaxLines {
				omitted += len(sec.Lines) - i
				break
			}
			facts = append(facts, map[string]any{"title": l.Subject, "value": l.Text})
			lines++
		}
		body = append(body, map[string]any{"type": "FactSet", "facts": facts})
	}
	if omitted > 0 {
		body = append(body, text(fmt.Sprintf("…and %d more on the status page.", omitted), map[string]any{"isSubtle": true}))
	}
	body = append(body, text("punchflow healthwatch · "+m.At.UTC().Format("2006-01-02 15:04 UTC"), map[string]any{"isSubtle": true, "size": "Small"}))
	card := AdaptiveCard{
		Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
		Type:    "AdaptiveCard",
		Version: "1.4",
		Body:    body,
		MSTeams: map[string]any{"width": "Full"},
	}
	if m.Link != "" {
		card.Actions = []map[string]any{{"type": "Action.OpenUrl", "title": "Status page", "url": m.Link}}
	}
	return TeamsMessage{Type: "message", Attachments: []TeamsAttachment{{ContentType: "application/vnd.microsoft.card.adaptive", Content: card}}}
}
