package channel

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
	"github.com/punchflow/punchflow/services/healthwatch/internal/policy"
)

var now = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)

// request is what a receiver got.
type request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	At           time.Time
}

// receiver is an HTTP endpoint that records requests and answers with the
// scripted responses in turn, then 200.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []request
	script   []func(http.ResponseWriter)
	validate func(request) error // a failed validation answers 400 and fails the test
	t        *testing.T
}

func newReceiver(t *testing.T, validate func(request) error, script ...func(http.ResponseWriter)) *receiver {
	r := &receiver{script: script, validate: validate, t: t}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		rq := request{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone(), Body: body, At: time.Now()}
		r.mu.Lock()
		r.got = append(r.got, rq)
		var step func(http.ResponseWriter)
		if len(r.script) > 0 {
			step, r.script = r.script[0], r.script[1:]
		}
		r.mu.Unlock()
		if r.validate != nil {
			if err := r.validate(rq); err != nil {
				t.Errorf("payload does not match the documented shape: %v\n%s", err, body)
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		if step != nil {
			step(w)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.got...)
}

func status(code int, headers ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "scripted %d", code)
	}
}

// alertMessage is a grouped alert over n devices plus one resolved.
func alertMessage(n int) notify.Message {
	var events []notify.Event
	for i := range n {
		cond := []health.State{health.Disconnected, health.Slow, health.StorageFull, health.Unauthorized}[i%4]
		events = append(events, notify.Event{Device: fmt.Sprintf("CQUJ%06d", i), Name: "Gate <" + strconv.Itoa(i) + "> & door", Site: "hq",
			Owner: "support", Condition: cond, At: now.Add(-time.Minute), RaisedAt: now.Add(-time.Minute), Detail: "no contact for 15m (3 × 5m)", State: cond})
	}
	events = append(events, notify.Event{Device: "CQUJ999999", Site: "plant", Condition: health.ClockDrift, Resolved: true,
		At: now.Add(-30 * time.Second), RaisedAt: now.Add(-2 * time.Hour), State: health.Online})
	m := notify.Composer{Loc: time.UTC, Link: "https://healthwatch.example.com"}.Alerts(events, now)
	m.ID = "alerts-test-1"
	return m
}

func reportMessage(n int) notify.Message {
	var devs []health.Device
	for i := range n {
		d := health.Device{Serial: fmt.Sprintf("D%04d", i), Site: "hq", State: health.Online, Heartbeats: 1, LastSyncAt: now}
		if i%3 == 0 {
			d.State, d.StateSince = health.Disconnected, now.Add(-time.Hour)
			d.Conditions = map[health.State]health.Condition{health.Disconnected: {Active: true, Since: now.Add(-time.Hour), Detail: "no contact"}}
		}
		devs = append(devs, d)
	}
	m := notify.Composer{Loc: time.UTC, Link: "https://healthwatch.example.com"}.Report(notify.BuildReport(notify.KindScheduled, "support", devs, now, time.UTC))
	m.ID = "report-test-1"
	return m
}

func sender(t *testing.T, c policy.Channel) Sender {
	t.Helper()
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	s, err := New(c, nil, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ---- Slack: Block Kit ----

func validateSlack(r request) error {
	var p map[string]any
	if err := json.Unmarshal(r.Body, &p); err != nil {
		return err
	}
	if r.Header.Get("Content-Type") != "application/json" {
		return fmt.Errorf("content type %q", r.Header.Get("Content-Type"))
	}
	if s, _ := p["text"].(string); s == "" {
		return fmt.Errorf("no fallback text")
	}
	blocks, ok := p["blocks"].([]any)
	if !ok || len(blocks) == 0 || len(blocks) > 50 {
		return fmt.Errorf("blocks must be 1 to 50, got %d", len(blocks))
	}
	textObj := func(v any, types ...string) (string, error) {
		o, ok := v.(map[string]any)
		if !ok {
			return "", fmt.Errorf("text object is %T", v)
		}
		typ, _ := o["type"].(string)
		txt, _ := o["text"].(string)
		okType := false
		for _, t := range types {
			okType = okType || typ == t
		}
		if !okType || txt == "" {
			return "", fmt.Errorf("text object type %q text %q", typ, txt)
		}
		return txt, nil
	}
	for i, b := range blocks {
		blk := b.(map[string]any)
		switch blk["type"] {
		case "header":
			txt, err := textObj(blk["text"], "plain_text")
			if err != nil || len([]rune(txt)) > 150 {
				return fmt.Errorf("block %d header: %v (%d chars)", i, err, len([]rune(txt)))
			}
		case "section":
			fields, hasFields := blk["fields"].([]any)
			if blk["text"] == nil && !hasFields {
				return fmt.Errorf("block %d section without text or fields", i)
			}
			if blk["text"] != nil {
				txt, err := textObj(blk["text"], "mrkdwn", "plain_text")
				if err != nil || len([]rune(txt)) > 3000 {
					return fmt.Errorf("block %d section text: %v (%d chars)", i, err, len([]rune(txt)))
				}
			}
			if len(fields) > 10 {
				return fmt.Errorf("block %d: %d fields", i, len(fields))
			}
			for _, f := range fields {
				txt, err := textObj(f, "mrkdwn", "plain_text")
				if err != nil || len([]rune(txt)) > 2000 {
					return fmt.Errorf("block %d field: %v", i, err)
				}
			}
		case "divider":
			if len(blk) != 1 {
				return fmt.Errorf("block %d divider has extra keys %v", i, blk)
			}
		case "context":
			els, _ := blk["elements"].([]any)
			if len(els) == 0 || len(els) > 10 {
				return fmt.Errorf("block %d context has %d elements", i, len(els))
			}
			for _, e := range els {
				if _, err := textObj(e, "mrkdwn", "plain_text"); err != nil {
					return fmt.Errorf("block %d context: %v", i, err)
				}
			}
		default:
			return fmt.Errorf("block %d has type %v", i, blk["type"])
		}
	}
	return nil
}

func TestSlack(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  notify.Message
		want []string
	}{
		{"small alert", alertMessage(3), []string{"CQUJ000000 Gate &lt;0&gt; &amp; door (hq)", "Resolved (1)", "<https://healthwatch.example.com|Status page>"}},
		{"huge alert stays within the limits", alertMessage(3000), []string{"more on the status page"}},
		{"report", reportMessage(30), []string{"Needs attention (10)", "*Online*"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t, validateSlack)
			s := sender(t, policy.Channel{Name: "slack", Type: policy.Slack, URL: rcv.URL + "/services/T0/B0/x"})
			if err := s.Send(context.Background(), tc.msg); err != nil {
				t.Fatal(err)
			}
			got := rcv.requests()
			if len(got) != 1 || got[0].Method != http.MethodPost || got[0].Path != "/services/T0/B0/x" {
				t.Fatalf("requests = %+v", got)
			}
			var p SlackMessage
			if err := json.Unmarshal(got[0].Body, &p); err != nil {
				t.Fatal(err)
			}
			var all strings.Builder
			for _, b := range p.Blocks {
				for _, tx := range append(append([]SlackText{}, b.Fields...), b.Elements...) {
					all.WriteString(tx.Text + "\n")
				}
				if b.Text != nil {
					all.WriteString(b.Text.Text + "\n")
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(all.String(), w) {
					t.Errorf("payload lacks %q", w)
				}
			}
		})
	}
}

// ---- Teams: Adaptive Card in a workflow message ----

func validateTeams(r request) error {
	if len(r.Body) > 28*1024 {
		return fmt.Errorf("payload is %d bytes, over Teams' 28 KB", len(r.Body))
	}
	var p struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string          `json:"contentType"`
			Content     json.RawMessage `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		return err
	}
	if p.Type != "message" || len(p.Attachments) != 1 || p.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" {
		return fmt.Errorf("envelope: type %q, %d attachments", p.Type, len(p.Attachments))
	}
	var card map[string]any
	if err := json.Unmarshal(p.Attachments[0].Content, &card); err != nil {
		return err
	}
	if card["type"] != "AdaptiveCard" {
		return fmt.Errorf("card type %v", card["type"])
	}
	if v, _ := card["version"].(string); !regexp.MustCompile(`^1\.[0-6]$`).MatchString(v) {
		return fmt.Errorf("card version %q", v)
	}
	if card["$schema"] != "http://adaptivecards.io/schemas/adaptive-card.json" {
		return fmt.Errorf("$schema %v", card["$schema"])
	}
	body, _ := card["body"].([]any)
	if len(body) == 0 {
		return fmt.Errorf("empty body")
	}
	for i, e := range body {
		el := e.(map[string]any)
		switch el["type"] {
		case "TextBlock":
			if s, _ := el["text"].(string); s == "" {
				return fmt.Errorf("body[%d] TextBlock without text", i)
			}
			if c, ok := el["color"]; ok && !strings.Contains("Default Dark Light Accent Good Warning Attention", c.(string)) {
				return fmt.Errorf("body[%d] color %v", i, c)
			}
		case "FactSet":
			facts, _ := el["facts"].([]any)
			if len(facts) == 0 {
				return fmt.Errorf("body[%d] FactSet without facts", i)
			}
			for _, f := range facts {
				fm := f.(map[string]any)
				if _, ok := fm["title"].(string); !ok {
					return fmt.Errorf("body[%d] fact without title", i)
				}
				if _, ok := fm["value"].(string); !ok {
					return fmt.Errorf("body[%d] fact without value", i)
				}
			}
		default:
			return fmt.Errorf("body[%d] has type %v", i, el["type"])
		}
	}
	for _, a := range card["actions"].([]any) {
		am := a.(map[string]any)
		if u, _ := am["url"].(string); am["type"] != "Action.OpenUrl" || u == "" {
			return fmt.Errorf("action %v", am)
		}
	}
	return nil
}

func TestTeams(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  notify.Message
	}{{"alert", alertMessage(5)}, {"huge alert", alertMessage(900)}, {"report", reportMessage(40)}} {
		t.Run(tc.name, func(t *testing.T) {
			// Workflows answer 202 Accepted.
			rcv := newReceiver(t, validateTeams, status(http.StatusAccepted))
			s := sender(t, policy.Channel{Name: "teams", Type: policy.Teams, URL: rcv.URL + "/workflows/abc/triggers/manual/paths/invoke"})
			if err := s.Send(context.Background(), tc.msg); err != nil {
				t.Fatal(err)
			}
			if got := rcv.requests(); len(got) != 1 || !strings.Contains(string(got[0].Body), tc.msg.Title) {
				t.Fatalf("requests = %d, title missing", len(got))
			}
		})
	}
}

// ---- Standard Webhooks ----

const whSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// verifyStandardWebhook checks a request the way the Standard Webhooks
// reference libraries do, written here from the specification rather than
// with the sender's code.
func verifyStandardWebhook(secret string, r request, now time.Time) error {
	id, ts, sigs := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing headers: id %q timestamp %q signature %q", id, ts, sigs)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q: %v", ts, err)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s outside tolerance", ts)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte("."))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(r.Body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no valid v1 signature in %q", sigs)
}

func TestWebhookSignedAndStableAcrossRetries(t *testing.T) {
	var rcv *receiver
	rcv = newReceiver(t, func(r request) error {
		if err := verifyStandardWebhook(whSecret, r, now); err != nil {
			return err
		}
		var ev struct {
			Type      string          `json:"type"`
			Timestamp time.Time       `json:"timestamp"`
			Data      json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			return err
		}
		if ev.Type != "healthwatch.alert" || ev.Timestamp.IsZero() || len(ev.Data) < 10 {
			return fmt.Errorf("envelope %+v", ev)
		}
		return nil
	}, status(http.StatusInternalServerError))
	s := sender(t, policy.Channel{Name: "hooks", Type: policy.Webhook, URL: rcv.URL + "/hook", Secret: whSecret})
	err := notify.Deliver(context.Background(), s, alertMessage(2), notify.Retry{Initial: time.Millisecond, Max: time.Millisecond, GiveUpAfter: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := rcv.requests()
	if len(got) != 2 || got[0].Header.Get("webhook-id") != "alerts-test-1" || got[1].Header.Get("webhook-id") != got[0].Header.Get("webhook-id") {
		t.Fatalf("want two deliveries with the same webhook-id, got %d: %v", len(got), got)
	}
	// A tampered body fails verification: the check can fail.
	bad := got[1]
	bad.Body = append([]byte(nil), bad.Body...)
	bad.Body[len(bad.Body)-2] ^= 1
	if verifyStandardWebhook(whSecret, bad, now) == nil {
		t.Fatal("a tampered body verified")
	}
}

// ---- Alertmanager API v2 ----

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func validateAlertmanager(r request) error {
	if r.Method != http.MethodPost || r.Path != "/api/v2/alerts" {
		return fmt.Errorf("%s %s, want POST /api/v2/alerts", r.Method, r.Path)
	}
	var alerts []map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &alerts); err != nil {
		return fmt.Errorf("body is not a list of alerts: %v", err)
	}
	if len(alerts) == 0 {
		return fmt.Errorf("empty list")
	}
	for i, a := range alerts {
		for k := range a {
			if !strings.Contains(" labels annotations startsAt endsAt generatorURL ", " "+k+" ") {
				return fmt.Errorf("alert %d: unknown field %q", i, k)
			}
		}
		var labels, ann map[string]string
		if err := json.Unmarshal(a["labels"], &labels); err != nil || len(labels) == 0 || labels["alertname"] == "" {
			return fmt.Errorf("alert %d: labels %s: %v", i, a["labels"], err)
		}
		for k := range labels {
			if !labelName.MatchString(k) {
				return fmt.Errorf("alert %d: label name %q", i, k)
			}
		}
		if raw, ok := a["annotations"]; ok {
			if err := json.Unmarshal(raw, &ann); err != nil {
				return fmt.Errorf("alert %d: annotations: %v", i, err)
			}
		}
		var starts, ends time.Time
		if err := json.Unmarshal(a["startsAt"], &starts); err != nil {
			return fmt.Errorf("alert %d: startsAt: %v", i, err)
		}
		if err := json.Unmarshal(a["endsAt"], &ends); err != nil {
			return fmt.Errorf("alert %d: endsAt: %v", i, err)
		}
		if ends.Before(starts) {
			return fmt.Errorf("alert %d: endsAt %v before startsAt %v", i, ends, starts)
		}
		var gen string
		if err := json.Unmarshal(a["generatorURL"], &gen); err != nil {
			return fmt.Errorf("alert %d: generatorURL: %v", i, err)
		}
		if u, err := url.Parse(gen); err != nil || u.Scheme == "" {
			return fmt.Errorf("alert %d: generatorURL %q", i, gen)
		}
	}
	return nil
}

func TestAlertmanager(t *testing.T) {
	rcv := newReceiver(t, validateAlertmanager)
	s := sender(t, policy.Channel{Name: "am", Type: policy.Alertmanager, URL: rcv.URL, ResendEvery: time.Minute})
	if !s.Accepts(notify.TypeAlert) || !s.Accepts(notify.TypeResend) || s.Accepts(notify.TypeReport) || s.Accepts(notify.TypeEscalation) {
		t.Fatal("Alertmanager takes alerts and resends only")
	}
	if err := s.Send(context.Background(), alertMessage(4)); err != nil {
		t.Fatal(err)
	}
	got := rcv.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests", len(got))
	}
	var alerts []PostableAlert
	if err := json.Unmarshal(got[0].Body, &alerts); err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 5 {
		t.Fatalf("%d alerts, want 5", len(alerts))
	}
	first, resolved := alerts[0], alerts[4]
	if first.Labels["alertname"] != "PunchflowDeviceDisconnected" || first.Labels["severity"] != "critical" || first.Labels["device"] != "CQUJ000000" ||
		first.Labels["site"] != "hq" || first.Labels["team"] != "support" || !first.EndsAt.Equal(now.Add(4*time.Minute)) {
		t.Errorf("firing alert = %+v", first)
	}
	if resolved.Labels["alertname"] != "PunchflowDeviceClockDrift" || !resolved.EndsAt.Equal(now.Add(-30*time.Second)) || !resolved.StartsAt.Equal(now.Add(-2*time.Hour)) {
		t.Errorf("resolved alert = %+v", resolved)
	}
	if first.GeneratorURL != "https://healthwatch.example.com/?q=CQUJ000000" {
		t.Errorf("generatorURL = %q", first.GeneratorURL)
	}
	if AlertsURL("http://am:9093/") != "http://am:9093/api/v2/alerts" || AlertsURL("http://am:9093/api/v2/alerts") != "http://am:9093/api/v2/alerts" {
		t.Error("AlertsURL")
	}
}

// ---- retries: 429 with Retry-After, then 500, then success ----

func TestRetriesThrough429And500(t *testing.T) {
	rcv := newReceiver(t, validateSlack,
		status(http.StatusTooManyRequests, "Retry-After", "1"),
		status(http.StatusInternalServerError),
	)
	s := sender(t, policy.Channel{Name: "slack", Type: policy.Slack, URL: rcv.URL})
	var attempts []notify.Attempt
	err := notify.Deliver(context.Background(), s, alertMessage(2), notify.Retry{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, GiveUpAfter: time.Minute},
		func(a notify.Attempt) { attempts = append(attempts, a) })
	if err != nil {
		t.Fatal(err)
	}
	got := rcv.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 429, 500, then 200", len(got))
	}
	if gap := got[1].At.Sub(got[0].At); gap < time.Second {
		t.Errorf("retried %v after the 429, before its Retry-After of 1s", gap)
	}
	if len(attempts) != 2 || attempts[0].Wait != time.Second || !strings.Contains(attempts[0].Err.Error(), "429") || !strings.Contains(attempts[1].Err.Error(), "500") {
		t.Errorf("attempts = %+v", attempts)
	}
}

func TestPermanentRejectionIsNotRetried(t *testing.T) {
	rcv := newReceiver(t, nil, status(http.StatusBadRequest), status(http.StatusOK))
	s := sender(t, policy.Channel{Name: "slack", Type: policy.Slack, URL: rcv.URL})
	err := notify.Deliver(context.Background(), s, alertMessage(1), notify.Retry{Initial: time.Millisecond, Max: time.Millisecond, GiveUpAfter: time.Minute}, nil)
	if err == nil || !notify.IsPermanent(err) || len(rcv.requests()) != 1 {
		t.Fatalf("Deliver = %v after %d requests; want one permanent failure", err, len(rcv.requests()))
	}
}
