package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-retry"
)

// Sender sends one message over one channel in one attempt. It returns nil
// once the channel accepted the message, an *HTTPError for an HTTP answer
// other than 2xx, a Permanent error for anything retrying cannot fix, and
// any other error for a failure worth retrying.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// HTTPError is a channel's HTTP answer other than 2xx.
type HTTPError struct {
	Status int
	// RetryAfter is the server's Retry-After, 0 when it sent none.
	RetryAfter time.Duration
	Body       string
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Retryable reports whether the request may succeed if sent again: a
// timeout, a rate limit or a server error. Any other 4xx will fail again.
func (e *HTTPError) Retryable() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooEarly ||
		e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// CheckResponse turns an HTTP response into nil (2xx) or an *HTTPError with
// the start of the body and the Retry-After header (seconds or an HTTP
// date, read at now) for the caller to honour. It does not close the body.
func CheckResponse(resp *http.Response, body []byte, now time.Time) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 300 {
		text = text[:300] + "…"
	}
	return &HTTPError{Status: resp.StatusCode, RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), now), Body: text}
}

// ParseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
// It returns 0 for an empty or unreadable value, and caps the delay at
// MaxRetryAfter.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

// MaxRetryAfter caps how long one Retry-After can hold a channel.
const MaxRetryAfter = 10 * time.Minute

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one that retrying cannot fix.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err cannot be fixed by retrying: marked
// Permanent, or an HTTP answer that is not Retryable.
func IsPermanent(err error) bool {
	var p permanent
	if errors.As(err, &p) {
		return true
	}
	var h *HTTPError
	return errors.As(err, &h) && !h.Retryable()
}

// Retry is a delivery's retry budget.
type Retry struct {
	// Initial is the first backoff; each retry doubles it (with 10% jitter)
	// up to Max.
	Initial, Max time.Duration
	// GiveUpAfter bounds the whole delivery.
	GiveUpAfter time.Duration
}

// Attempt describes one try, for logs and metrics.
type Attempt struct {
	N   int
	Err error
	// Wait is the delay before the next try (0 after the last).
	Wait time.Duration
}

// Deliver sends m through s until it is accepted, a permanent error comes
// back, the retry budget is spent or ctx ends; it returns the last error.
// Between tries it waits the exponential backoff, or the channel's
// Retry-After when that is longer. observe, if not nil, is called after
// every failed try.
func Deliver(ctx context.Context, s Sender, m Message, r Retry, observe func(Attempt)) error {
	var hint time.Duration
	base := retry.WithMaxDuration(r.GiveUpAfter, retry.WithCappedDuration(r.Max, retry.WithJitterPercent(10, retry.NewExponential(r.Initial))))
	var lastWait time.Duration
	b := retry.BackoffFunc(func() (time.Duration, bool) {
		next, stop := base.Next()
		if stop {
			lastWait = 0
			return 0, true
		}
		if hint > next {
			next = hint
		}
		hint, lastWait = 0, next
		return next, false
	})
	n := 0
	var pending *Attempt
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		if pending != nil && observe != nil {
			pending.Wait = lastWait
			observe(*pending)
		}
		pending = nil
		n++
		err := s.Send(ctx, m)
		if err == nil {
			return nil
		}
		if IsPermanent(err) {
			if observe != nil {
				observe(Attempt{N: n, Err: err})
			}
			return err
		}
		var h *HTTPError
		if errors.As(err, &h) {
			hint = h.RetryAfter
		}
		pending = &Attempt{N: n, Err: err}
		return retry.RetryableError(err)
	})
	if pending != nil && observe != nil {
		observe(*pending)
	}
	if err != nil {
		return fmt.Errorf("after %d attempts: %w", n, err)
	}
	return nil
}
