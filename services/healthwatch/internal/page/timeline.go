package page

import (
	"time"

	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
)

// Unknown is the timeline state before healthwatch knew of a device.
const Unknown health.State = "unknown"

// Width is the timelines' SVG viewBox width: segment X and W are in these
// units.
const Width = 1000.0

// Segment is one stretch of a timeline.
type Segment struct {
	State    health.State
	From, To time.Time
	// X and W place the segment in a viewBox Width units wide.
	X, W float64
}

// Timeline cuts a device's state history to the window ending at now. The
// time before known (when healthwatch first knew of the device) or before
// the oldest span is Unknown. Segments are contiguous and cover the window.
func Timeline(history []health.Span, known, now time.Time, window time.Duration) []Segment {
	start := now.Add(-window)
	var out []Segment
	add := func(s health.State, from, to time.Time) {
		if from.Before(start) {
			from = start
		}
		if to.After(now) {
			to = now
		}
		if !to.After(from) {
			return
		}
		if n := len(out); n > 0 && out[n-1].State == s && out[n-1].To.Equal(from) {
			out[n-1].To = to
			return
		}
		out = append(out, Segment{State: s, From: from, To: to})
	}
	first := now
	if len(history) > 0 {
		first = history[0].From
	}
	if !known.IsZero() && known.Before(first) {
		first = known
	}
	add(Unknown, start, first)
	for i, sp := range history {
		from := sp.From
		if i == 0 && !known.IsZero() && known.Before(from) {
			from = known
		}
		to := now
		if i+1 < len(history) {
			to = history[i+1].From
		}
		add(sp.State, from, to)
	}
	span := float64(window)
	for i := range out {
		out[i].X = float64(out[i].From.Sub(start)) / span * Width
		out[i].W = float64(out[i].To.Sub(out[i].From)) / span * Width
	}
	return out
}
