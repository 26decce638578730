package fleet

import (
	"testing"
	"time"

	"github.com/punchflow/punchflow/proto"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 80 * time.Millisecond, 120 * time.Millisecond},
		{2, 160 * time.Millisecond, 240 * time.Millisecond},
		{3, 320 * time.Millisecond, 480 * time.Millisecond},
		{4, 640 * time.Millisecond, 960 * time.Millisecond},
		{5, 800 * time.Millisecond, 1200 * time.Millisecond}, // capped at 1 s, jittered
		{50, 800 * time.Millisecond, 1200 * time.Millisecond},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := Backoff(100*time.Millisecond, time.Second, tt.n)
			if d < tt.min || d > tt.max {
				t.Errorf("Backoff(n=%d) = %v, want %v–%v", tt.n, d, tt.min, tt.max)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("Backoff(n=%d): %d distinct values in 50, want jitter", tt.n, len(seen))
		}
	}
}

// TestBreaker walks a device through failures, an opening, a failed trial,
// a successful trial, and a refused comm key.
func TestBreaker(t *testing.T) {
	p := BreakerPolicy{BackoffBase: time.Second, BackoffMax: 10 * time.Second, Failures: 3,
		Cooldown: time.Minute, MaxCooldown: 3 * time.Minute, Unauthorized: time.Hour}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var b Breaker
	type step struct {
		name      string
		at        time.Duration // after t0
		fail      string        // error class, "" for success
		wantDelay [2]time.Duration
		wantOpen  bool
	}
	steps := []step{
		{"first failure: backoff", 0, proto.ErrorClassTimeout, [2]time.Duration{800 * time.Millisecond, 1200 * time.Millisecond}, false},
		{"second failure: longer backoff", 2 * time.Second, proto.ErrorClassTimeout, [2]time.Duration{1600 * time.Millisecond, 2400 * time.Millisecond}, false},
		{"third failure opens", 5 * time.Second, proto.ErrorClassRefused, [2]time.Duration{time.Minute, time.Minute}, true},
		{"failed trial: open twice as long", 66 * time.Second, proto.ErrorClassRefused, [2]time.Duration{2 * time.Minute, 2 * time.Minute}, true},
		{"failed trial again: capped", 190 * time.Second, proto.ErrorClassIO, [2]time.Duration{3 * time.Minute, 3 * time.Minute}, true},
		{"successful trial closes", 400 * time.Second, "", [2]time.Duration{}, false},
		{"refused comm key opens at once", 401 * time.Second, proto.ErrorClassUnauthorized, [2]time.Duration{time.Hour, time.Hour}, true},
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		if ok, wait := b.Allow(now); !ok {
			t.Fatalf("%s: breaker does not allow a session at +%v (wait %v)", s.name, s.at, wait)
		}
		if s.fail == "" {
			b.Success()
		} else {
			d := b.Failure(now, s.fail, p)
			if d < s.wantDelay[0] || d > s.wantDelay[1] {
				t.Errorf("%s: delay %v, want %v–%v", s.name, d, s.wantDelay[0], s.wantDelay[1])
			}
		}
		if got := b.Open(now); got != s.wantOpen {
			t.Errorf("%s: open = %v, want %v (%+v)", s.name, got, s.wantOpen, b)
		}
		if s.wantOpen {
			if ok, wait := b.Allow(now.Add(time.Second)); ok || wait <= 0 {
				t.Errorf("%s: open breaker allows a session a second later", s.name)
			}
		}
	}
	if b.LastClass != proto.ErrorClassUnauthorized || b.Failures != 1 {
		t.Errorf("after success and one refusal: %+v, want 1 failure of class unauthorized", b)
	}
}

func TestClockOffset(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 11, 7, 0, 0, 250_000_000, time.UTC) // 08:00:00.25 in Berlin
	tests := []struct {
		name   string
		device time.Time
		loc    *time.Location
		want   time.Duration
	}{
		{"in step, UTC", time.Date(2026, 3, 11, 7, 0, 0, 0, time.UTC), time.UTC, 250 * time.Millisecond},
		{"in step, Berlin", time.Date(2026, 3, 11, 8, 0, 0, 0, time.UTC), berlin, 250 * time.Millisecond},
		{"two minutes fast", time.Date(2026, 3, 11, 8, 2, 0, 0, time.UTC), berlin, 2*time.Minute + 250*time.Millisecond},
		{"set to UTC instead of Berlin", time.Date(2026, 3, 11, 7, 0, 0, 0, time.UTC), berlin, -time.Hour + 250*time.Millisecond},
	}
	for _, tt := range tests {
		if got := ClockOffset(tt.device, at, tt.loc); got != tt.want {
			t.Errorf("%s: ClockOffset = %v, want %v", tt.name, got, tt.want)
		}
	}
}
