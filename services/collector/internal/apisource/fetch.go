package apisource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-retry"

	"github.com/punchflow/punchflow/services/collector/internal/extract"
)

// maxBody bounds one response body (a page).
const maxBody = 64 << 20

// HTTPError is an answer with a status that is not 2xx.
type HTTPError struct {
	URL    string
	Status int
	// RetryAfter is the wait the server asked for (429, 503), if any.
	RetryAfter time.Duration
	// Body is the start of the answer, for the operator.
	Body string
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("GET %s: HTTP %d", e.URL, e.Status)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (Retry-After %v)", e.RetryAfter)
	}
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// retryable reports whether a status is worth asking again: 408, 425, 429
// and every 5xx except 501 (not implemented never changes).
func retryable(status int) bool {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly, status == http.StatusTooManyRequests:
		return true
	case status >= 500 && status != http.StatusNotImplemented:
		return true
	}
	return false
}

// ParseRetryAfter reads a Retry-After value: delay seconds (a decimal
// fraction is accepted) or an HTTP date. ok is false when v is empty or
// unreadable.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// get fetches one URL with the source's rate limit and retries, and returns
// the body of a 2xx answer with its headers. Errors wrap
// extract.ErrUnauthorized (401, 403) or extract.ErrUnavailable (retries
// spent, Retry-After too long); other 4xx answers are returned as
// *HTTPError at once.
func (s *Source) get(ctx context.Context, u string) ([]byte, http.Header, error) {
	r := s.cfg.Retry
	var hint time.Duration // the server's Retry-After for the next wait
	exp := retry.WithJitterPercent(20, retry.WithCappedDuration(r.Max, retry.NewExponential(r.Base)))
	failures := 0 // retries not paced by a Retry-After
	bo := retry.WithMaxDuration(r.Budget, retry.BackoffFunc(func() (time.Duration, bool) {
		if hint > 0 {
			// The server said when to come back: that is pacing, not a
			// failure, so only the budget bounds it. Exactly Retry-After
			// would send every waiting client back at the same instant, and
			// the same ones would lose again: wait a little longer, by a
			// random amount.
			d := hint + rand.N(max(hint/5, r.Base))
			hint = 0
			return d, false
		}
		if failures++; failures > r.Attempts {
			return 0, true
		}
		return exp.Next()
	}))
	var body []byte
	var header http.Header
	attempt := 0
	err := retry.Do(ctx, bo, func(ctx context.Context) error {
		attempt++
		if err := s.limiter.Wait(ctx); err != nil {
			return err
		}
		b, h, err := s.once(ctx, u)
		if err == nil {
			body, header = b, h
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var he *HTTPError
		if errors.As(err, &he) {
			switch {
			case he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden:
				return fmt.Errorf("%w: %v", extract.ErrUnauthorized, err)
			case !retryable(he.Status):
				return err
			case he.RetryAfter > r.MaxRetryAfter:
				return fmt.Errorf("%w: %v, longer than max_retry_after %v", extract.ErrUnavailable, err, r.MaxRetryAfter)
			}
			hint = he.RetryAfter
			if he.Status == http.StatusTooManyRequests {
				s.throttled.Add(1)
			}
		}
		if errors.Is(err, extract.ErrUnauthorized) {
			return err // the token endpoint refused the client
		}
		s.retried.Add(1)
		s.log.Debug("retrying request", "url", u, "attempt", attempt, "err", err)
		return retry.RetryableError(err)
	})
	if err != nil && ctx.Err() == nil && !errors.Is(err, extract.ErrUnauthorized) && !errors.Is(err, extract.ErrUnavailable) {
		var he *HTTPError
		if !errors.As(err, &he) || retryable(he.Status) {
			err = fmt.Errorf("%w after %d attempts: %w", extract.ErrUnavailable, attempt, err)
		}
	}
	return body, header, err
}

// once sends one request; the client's Timeout bounds it, body included.
func (s *Source) once(ctx context.Context, u string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("request %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	if s.decorate != nil {
		s.decorate(req)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if isTokenRefused(err) {
			return nil, nil, fmt.Errorf("%w: %v", extract.ErrUnauthorized, err)
		}
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", u, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		he := &HTTPError{URL: u, Status: resp.StatusCode, Body: snippet(body)}
		he.RetryAfter, _ = ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return nil, nil, he
	}
	if len(body) > maxBody {
		return nil, nil, fmt.Errorf("%w: GET %s: body larger than %d MiB; ask for smaller pages", extract.ErrMalformed, u, maxBody>>20)
	}
	return body, resp.Header, nil
}

// snippet is the start of a body, on one line, for error messages.
func snippet(b []byte) string {
	const n = 200
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
