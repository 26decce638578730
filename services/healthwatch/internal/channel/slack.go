package channel

import (
	"context"
	"fmt"
	"strings"

	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
)

// Slack posts to a Slack incoming webhook as Block Kit blocks, with the
// plain-text summary as the notification fallback.
type Slack struct {
	url  string
	http httpPoster
}

// Block Kit limits (api.slack.com/reference/block-kit/blocks).
const (
	slackMaxBlocks      = 50
	slackMaxHeader      = 150
	slackMaxSectionText = 3000
	slackMaxFields      = 10
	slackMaxFieldText   = 2000
	slackMaxContextElem = 10
)

// SlackMessage is the incoming-webhook payload.
type SlackMessage struct {
	Text   string       `json:"text"`
	Blocks []SlackBlock `json:"blocks"`
}

// SlackBlock is one layout block: header, section, divider or context.
type SlackBlock struct {
	Type     string      `json:"type"`
	Text     *SlackText  `json:"text,omitempty"`
	Fields   []SlackText `json:"fields,omitempty"`
	Elements []SlackText `json:"elements,omitempty"`
}

// SlackText is a text object: plain_text or mrkdwn.
type SlackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

// Accepts every message type.
func (s *Slack) Accepts(t string) bool { return acceptsAll(t) }

// Send posts m once.
func (s *Slack) Send(ctx context.Context, m notify.Message) error {
	if err := s.http.postJSON(ctx, s.url, SlackPayload(m), nil); err != nil {
		return fmt.Errorf("slack: %w", err)
	}
	return nil
}

// SlackPayload renders m as Block Kit within Slack's limits: long sections
// are split across blocks, and what does not fit in 50 blocks is counted
// in a last line that points to the status page.
func SlackPayload(m notify.Message) SlackMessage {
	mrk := func(s string) *SlackText { return &SlackText{Type: "mrkdwn", Text: s} }
	blocks := []SlackBlock{{Type: "header", Text: &SlackText{Type: "plain_text", Text: truncate(icon(m.Severity)+" "+m.Title, slackMaxHeader), Emoji: true}}}
	if m.Summary != "" {
		blocks = append(blocks, SlackBlock{Type: "section", Text: mrk(truncate(slackEscape(m.Summary), slackMaxSectionText))})
	}
	if len(m.Facts) > 0 {
		var fields []SlackText
		for _, f := range m.Facts[:min(len(m.Facts), slackMaxFields)] {
			fields = append(fields, SlackText{Type: "mrkdwn", Text: truncate("*"+slackEscape(f.Name)+"*\n"+slackEscape(f.Value), slackMaxFieldText)})
		}
		blocks = append(blocks, SlackBlock{Type: "section", Fields: fields})
	}
	// Room for the closing divider and context blocks.
	budget := slackMaxBlocks - len(blocks) - 2
	omitted := 0
	for _, sec := range m.Sections {
		if budget <= 1 {
			omitted += len(sec.Lines)
			continue
		}
		blocks = append(blocks, SlackBlock{Type: "divider"})
		budget--
		text := "*" + slackEscape(sec.Heading) + "*"
		for i, l := range sec.Lines {
			line := "\n• *" + slackEscape(l.Subject) + "*: " + slackEscape(l.Text)
			if len(text)+len(line) > slackMaxSectionText {
				if budget <= 1 {
					omitted += len(sec.Lines) - i
					break
				}
				blocks = append(blocks, SlackBlock{Type: "section", Text: mrk(text)})
				budget--
				text = ""
				line = strings.TrimPrefix(line, "\n")
			}
			text += line
		}
		if text != "" {
			blocks = append(blocks, SlackBlock{Type: "section", Text: mrk(truncate(text, slackMaxSectionText))})
			budget--
		}
	}
	var ctxElems []SlackText
	if omitted > 0 {
		ctxElems = append(ctxElems, SlackText{Type: "mrkdwn", Text: fmt.Sprintf("…and %d more on the status page", omitted)})
	}
	if m.Link != "" {
		ctxElems = append(ctxElems, SlackText{Type: "mrkdwn", Text: "<" + m.Link + "|Status page>"})
	}
	ctxElems = append(ctxElems, SlackText{Type: "mrkdwn", Text: "punchflow healthwatch · " + m.At.UTC().Format("2006-01-02 15:04 UTC")})
	blocks = append(blocks, SlackBlock{Type: "context", Elements: ctxElems[:min(len(ctxElems), slackMaxContextElem)]})
	return SlackMessage{Text: truncate(m.Title+": "+m.Summary, 3000), Blocks: blocks}
}

// slackEscape escapes the three characters mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func icon(severity string) string {
	switch severity {
	case notify.SeverityCritical:
		return "🔴"
	case notify.SeverityWarning:
		return "🟠"
	case notify.SeverityResolved:
		return "✅"
	}
	return "ℹ️"
}

// truncate cuts s to at most n characters (runes), marking the cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
