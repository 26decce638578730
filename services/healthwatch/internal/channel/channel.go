// Package channel sends notify.Messages to the places people look: Slack
// incoming webhooks (Block Kit), Microsoft Teams workflow webhooks
// (Adaptive Cards), generic webhooks signed the Standard Webhooks way,
// Prometheus Alertmanager (/api/v2/alerts) and SMTP e-mail (HTML and plain
// text). Each sender makes exactly one attempt per Send; notify.Deliver
// retries.
package channel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
	"github.com/punchflow/punchflow/services/healthwatch/internal/policy"
)

// Sender is a notify.Sender that also says which message types it takes.
type Sender interface {
	notify.Sender
	// Accepts reports whether the channel carries messages of this type
	// (Alertmanager takes alerts only; the others take everything).
	Accepts(msgType string) bool
}

// New returns the sender for c. client may be nil (http.DefaultClient's
// transport with c.Timeout per request); now may be nil (time.Now).
func New(c policy.Channel, client *http.Client, now func() time.Time) (Sender, error) {
	if client == nil {
		client = &http.Client{}
	}
	if now == nil {
		now = time.Now
	}
	h := httpPoster{client: client, timeout: c.Timeout, now: now}
	switch c.Type {
	case policy.Slack:
		return &Slack{url: c.URL, http: h}, nil
	case policy.Teams:
		return &Teams{url: c.URL, http: h}, nil
	case policy.Webhook:
		key, err := policy.DecodeWebhookSecret(c.Secret)
		if err != nil {
			return nil, fmt.Errorf("channel %s: %w", c.Name, err)
		}
		return &Webhook{url: c.URL, key: key, http: h, now: now}, nil
	case policy.Alertmanager:
		return &Alertmanager{base: c.URL, resendEvery: c.ResendEvery, http: h, now: now}, nil
	case policy.Email:
		return &Email{cfg: c, now: now}, nil
	}
	return nil, fmt.Errorf("channel %s: unknown type %q", c.Name, c.Type)
}

type httpPoster struct {
	client  *http.Client
	timeout time.Duration
	now     func() time.Time
}

// postJSON posts v as JSON with the extra headers and checks the answer.
func (h httpPoster) postJSON(ctx context.Context, url string, v any, headers map[string]string) error {
	body, err := json.Marshal(v)
	if err != nil {
		return notify.Permanent(fmt.Errorf("encode payload: %w", err))
	}
	return h.post(ctx, url, body, headers)
}

func (h httpPoster) post(ctx context.Context, url string, body []byte, headers map[string]string) error {
	if h.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return notify.Permanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "punchflow-healthwatch")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return notify.CheckResponse(resp, b, h.now())
}

func acceptsAll(string) bool { return true }
