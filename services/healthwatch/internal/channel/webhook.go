package channel

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
)

// Webhook posts JSON to any URL, signed the Standard Webhooks way
// (standardwebhooks.com): headers webhook-id (stable across retries, so the
// receiver can drop repeats), webhook-timestamp (Unix seconds) and
// webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>" keyed by
// the secret's bytes after "whsec_".
type Webhook struct {
	url  string
	key  []byte
	http httpPoster
	now  func() time.Time
}

// WebhookEvent is the body: the recommended type/timestamp/data envelope,
// with the whole message as data.
type WebhookEvent struct {
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      notify.Message `json:"data"`
}

// Accepts every message type.
func (w *Webhook) Accepts(t string) bool { return acceptsAll(t) }

// Send posts m once, signed at the current time.
func (w *Webhook) Send(ctx context.Context, m notify.Message) error {
	body, err := json.Marshal(WebhookEvent{Type: "healthwatch." + m.Type, Timestamp: m.At.UTC(), Data: m})
	if err != nil {
		return notify.Permanent(fmt.Errorf("webhook: encode: %w", err))
	}
	ts := w.now()
	headers := map[string]string{
		"webhook-id":        m.ID,
		"webhook-timestamp": strconv.FormatInt(ts.Unix(), 10),
		"webhook-signature": SignWebhook(w.key, m.ID, ts, body),
	}
	if err := w.http.post(ctx, w.url, body, headers); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	return nil
}

// SignWebhook returns the webhook-signature value for id, timestamp ts and
// body under key: "v1," and the base64 HMAC-SHA256 of "id.ts.body".
func SignWebhook(key []byte, id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
