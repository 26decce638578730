package proto

import (
	"fmt"
	"time"
)

// LocalTimeLayout is the layout of a device's own clock reading: local wall
// time without a zone, exactly as the device reported it. The transformer, not
// the collector, decides which instant it denotes.
const LocalTimeLayout = "2006-01-02T15:04:05"

// workDateLayout is the layout of a payroll day.
const workDateLayout = "2006-01-02"

// FormatLocalTime renders the wall clock of t (its zone is ignored) in
// LocalTimeLayout.
func FormatLocalTime(t time.Time) string { return t.Format(LocalTimeLayout) }

// ParseLocalTime parses a LocalTimeLayout string: exactly
// YYYY-MM-DDThh:mm:ss, a date that exists, no fraction, no zone. The result
// carries the wall clock fields in time.UTC; it is a civil time, not an
// instant, until a zone is applied with time.Date.
func ParseLocalTime(s string) (time.Time, error) {
	t, err := parseExact(LocalTimeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("device time %q is not YYYY-MM-DDThh:mm:ss: %w", s, err)
	}
	return t, nil
}

// parseExact is time.Parse without the leniencies time.Parse allows beyond
// the layout (a one-digit hour, fractional seconds after a layout that has
// none), so that every accepted string has the layout's exact shape.
func parseExact(layout, s string) (time.Time, error) {
	if len(s) != len(layout) {
		return time.Time{}, fmt.Errorf("want %d characters, got %d", len(layout), len(s))
	}
	return time.Parse(layout, s)
}
