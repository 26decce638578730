package fleet

import (
	"time"

	"github.com/sethvargo/go-retry"

	"github.com/punchflow/punchflow/proto"
)

// BreakerPolicy configures the circuit breaker and the backoff of every
// device.
type BreakerPolicy struct {
	// BackoffBase and BackoffMax bound the jittered exponential delay after
	// a failed session while the breaker is closed: base, 2·base, 4·base …
	// up to max, each ±20 %.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Failures is how many consecutive failed sessions open the breaker.
	Failures int
	// Cooldown is how long an open breaker stays open the first time; it
	// doubles every time the trial session after it fails, up to MaxCooldown.
	Cooldown    time.Duration
	MaxCooldown time.Duration
	// Unauthorized is how long the breaker stays open after a device refused
	// the comm key. Retrying the same key cannot help: the breaker opens at
	// the first refusal and closes when the key (the device's fingerprint)
	// changes, or after this long.
	Unauthorized time.Duration
}

// DefaultBreakerPolicy is what the collector uses unless configured.
var DefaultBreakerPolicy = BreakerPolicy{
	BackoffBase: 5 * time.Second, BackoffMax: 5 * time.Minute,
	Failures: 5, Cooldown: 5 * time.Minute, MaxCooldown: time.Hour,
	Unauthorized: time.Hour,
}

// Breaker is the circuit breaker of one device. It is plain data, kept in
// the device's KV state so that it moves with the device between replicas;
// its methods are pure.
//
// Closed, failed sessions are retried after a jittered exponential backoff.
// After Failures consecutive failures (or one unauthorized) it opens: no
// session is attempted until OpenUntil. The first session after that is a
// trial (half-open): success closes the breaker, failure opens it again for
// twice as long.
type Breaker struct {
	Failures  int       `json:"failures,omitempty"`
	Opens     int       `json:"opens,omitempty"` // consecutive openings, for the doubling cooldown
	OpenUntil time.Time `json:"open_until,omitzero"`
	LastClass string    `json:"last_class,omitempty"`
}

// Allow reports whether a session may start at now, and otherwise how long
// until it may.
func (b Breaker) Allow(now time.Time) (bool, time.Duration) {
	if now.Before(b.OpenUntil) {
		return false, b.OpenUntil.Sub(now)
	}
	return true, 0
}

// Open reports whether the breaker is open at now.
func (b Breaker) Open(now time.Time) bool { return now.Before(b.OpenUntil) }

// Success closes the breaker.
func (b *Breaker) Success() { *b = Breaker{} }

// Failure records a failed session of the given error class at now and
// returns how long to wait before the next attempt.
func (b *Breaker) Failure(now time.Time, class string, p BreakerPolicy) time.Duration {
	b.Failures++
	b.LastClass = class
	switch {
	case class == proto.ErrorClassUnauthorized:
		b.Opens++
		b.OpenUntil = now.Add(p.Unauthorized)
		return p.Unauthorized
	case b.Failures >= max(p.Failures, 1):
		cool := p.Cooldown << min(b.Opens, 16)
		if p.MaxCooldown > 0 && (cool > p.MaxCooldown || cool <= 0) {
			cool = p.MaxCooldown
		}
		b.Opens++
		b.OpenUntil = now.Add(cool)
		return cool
	}
	return Backoff(p.BackoffBase, p.BackoffMax, b.Failures)
}

// Backoff is the delay before attempt n+1 after n consecutive failures (n ≥ 1):
// go-retry's exponential backoff from base, capped at hi, with ±20 % jitter
// (also at the cap) so that devices that failed together do not retry
// together.
func Backoff(base, hi time.Duration, n int) time.Duration {
	if base <= 0 {
		return 0
	}
	b := retry.NewExponential(base)
	if hi > 0 {
		b = retry.WithCappedDuration(hi, b)
	}
	b = retry.WithJitterPercent(20, b)
	var d time.Duration
	for range min(max(n, 1), 64) {
		d, _ = b.Next()
	}
	return d
}
