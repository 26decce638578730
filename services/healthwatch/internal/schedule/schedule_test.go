package schedule

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDaily(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	twice := []Clock{{8, 0}, {14, 0}}
	tests := []struct {
		name     string
		from, to time.Time
		loc      *time.Location
		want     []time.Time
	}{
		{"one day in winter (UTC+1)", utc("2026-11-20T00:00:00Z"), utc("2026-11-21T00:00:00Z"), berlin,
			[]time.Time{utc("2026-11-20T07:00:00Z"), utc("2026-11-20T13:00:00Z")}},
		{"across the spring change (UTC+1 to UTC+2)", utc("2026-03-28T12:00:00Z"), utc("2026-03-29T11:00:00Z"), berlin,
			[]time.Time{utc("2026-03-28T13:00:00Z"), utc("2026-03-29T06:00:00Z")}},
		{"a window ending exactly at a slot includes it", utc("2026-11-20T06:59:00Z"), utc("2026-11-20T07:00:00Z"), berlin,
			[]time.Time{utc("2026-11-20T07:00:00Z")}},
		{"a window starting exactly at a slot excludes it", utc("2026-11-20T07:00:00Z"), utc("2026-11-20T08:00:00Z"), berlin, nil},
		{"empty window", utc("2026-11-20T07:00:00Z"), utc("2026-11-20T07:00:00Z"), berlin, nil},
		{"UTC", utc("2026-11-20T07:30:00Z"), utc("2026-11-20T14:00:00Z"), time.UTC,
			[]time.Time{utc("2026-11-20T08:00:00Z"), utc("2026-11-20T14:00:00Z")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Daily(tt.from, tt.to, twice, tt.loc)
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("Daily (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseClock(t *testing.T) {
	if c, err := ParseClock("08:05"); err != nil || c != (Clock{8, 5}) || c.String() != "08:05" {
		t.Fatalf("ParseClock(08:05) = %v, %v", c, err)
	}
	for _, bad := range []string{"8", "25:00", "08:61", "noon"} {
		if _, err := ParseClock(bad); err == nil || !strings.Contains(err.Error(), "HH:MM") {
			t.Errorf("ParseClock(%q) = %v, want an error saying HH:MM", bad, err)
		}
	}
}

func TestCutoffs(t *testing.T) {
	tests := []struct {
		spec     string
		from, to time.Time
		want     []time.Time
	}{
		{"monthly 25 12:00", utc("2026-11-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"),
			[]time.Time{utc("2026-11-25T12:00:00Z"), utc("2026-12-25T12:00:00Z")}},
		{"monthly 31 18:00", utc("2027-02-01T00:00:00Z"), utc("2027-04-01T00:00:00Z"),
			[]time.Time{utc("2027-02-28T18:00:00Z"), utc("2027-03-31T18:00:00Z")}},
		{"monthly last 18:00", utc("2028-02-01T00:00:00Z"), utc("2028-03-01T00:00:00Z"),
			[]time.Time{utc("2028-02-29T18:00:00Z")}},
		{"weekly fri 17:00", utc("2026-11-16T00:00:00Z"), utc("2026-11-30T00:00:00Z"),
			[]time.Time{utc("2026-11-20T17:00:00Z"), utc("2026-11-27T17:00:00Z")}},
		{"weekly Friday 17:00", utc("2026-11-16T00:00:00Z"), utc("2026-11-21T00:00:00Z"),
			[]time.Time{utc("2026-11-20T17:00:00Z")}},
		{"2026-12-23 12:00", utc("2026-12-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"),
			[]time.Time{utc("2026-12-23T12:00:00Z")}},
		{"2026-12-23 12:00", utc("2027-01-01T00:00:00Z"), utc("2028-01-01T00:00:00Z"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			c, err := ParseCutoff(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Between(tt.from, tt.to, time.UTC)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Between (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{"monthly 32 12:00", "weekly someday 12:00", "yearly 1 12:00", "monthly 25", "2026-13-01 12:00", "monthly 25 25:00"} {
		if _, err := ParseCutoff(bad); err == nil || !strings.Contains(err.Error(), "monthly 25 12:00") {
			t.Errorf("ParseCutoff(%q) = %v, want an error with an example", bad, err)
		}
	}
}

func TestEscalations(t *testing.T) {
	c, _ := ParseCutoff("monthly 25 12:00")
	before := []time.Duration{24 * time.Hour, 4 * time.Hour}
	got := Escalations(utc("2026-11-24T00:00:00Z"), utc("2026-11-25T09:00:00Z"), []Cutoff{c}, before, time.UTC)
	want := []Escalation{
		{At: utc("2026-11-24T12:00:00Z"), Cutoff: utc("2026-11-25T12:00:00Z"), Before: 24 * time.Hour},
		{At: utc("2026-11-25T08:00:00Z"), Cutoff: utc("2026-11-25T12:00:00Z"), Before: 4 * time.Hour},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Escalations (-want +got):\n%s", diff)
	}
	if got := Escalations(utc("2026-11-25T08:00:00Z"), utc("2026-11-25T11:00:00Z"), []Cutoff{c}, before, time.UTC); len(got) != 0 {
		t.Errorf("nothing due after the last lead time, got %v", got)
	}
	next, ok := NextCutoff(utc("2026-11-25T12:00:00Z"), []Cutoff{c}, time.UTC)
	if !ok || !next.Equal(utc("2026-12-25T12:00:00Z")) {
		t.Errorf("NextCutoff = %v %v", next, ok)
	}
}
