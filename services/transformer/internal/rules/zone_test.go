package rules

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/punchflow/punchflow/proto"
)

// TestResolveMatchesTimePackage compares the table-driven resolution with
// Resolve on the time package in zones with daylight saving, half-hour and 45-minute
// offsets, southern-hemisphere rules and historical changes, at random wall
// clocks and at every wall clock around each transition.
func TestResolveMatchesTimePackage(t *testing.T) {
	zones := []string{"UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Sydney",
		"Australia/Lord_Howe", "America/Santiago", "Africa/Casablanca", "Pacific/Apia", "America/Sao_Paulo", "Europe/Dublin"}
	rng := rand.New(rand.NewPCG(7, 7))
	for _, name := range zones {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		tab := newZoneTable(loc)
		check := func(wall time.Time) {
			want, wantFlag := Resolve(wall, loc)
			w := wall.Unix()
			if sec, flag := tab.resolve(w); sec != want.Unix() || flag != wantFlag {
				t.Fatalf("%s %s: table gives %d %q, want %d %q", name, proto.FormatLocalTime(wall), sec, flag, want.Unix(), wantFlag)
			}
		}
		for range 2000 {
			check(time.Unix(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC).Unix()+rng.Int64N(60*365*86400), 0).UTC())
		}
		for i := 1; i < len(tab.starts); i++ {
			if tab.starts[i] < time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC).Unix() || tab.starts[i] > time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC).Unix() {
				continue
			}
			base := tab.starts[i] + tab.offs[i-1] // the wall clock at which the transition happens
			for d := int64(-2 * 3600); d <= 2*3600; d += 15 * 60 {
				check(time.Unix(base+d, 0).UTC())
			}
		}
	}
}

func TestCivil(t *testing.T) {
	for day := daysFromCivil(1899, 12, 1); day < daysFromCivil(2101, 2, 1); day += 13 {
		y, m, d := civilFromDays(day)
		want := time.Unix(day*86400, 0).UTC()
		if y != want.Year() || m != int(want.Month()) || d != want.Day() || weekday(day) != want.Weekday() || formatDate(day) != want.Format(time.DateOnly) {
			t.Fatalf("day %d: %04d-%02d-%02d %s %s, want %s %s", day, y, m, d, weekday(day), formatDate(day), want.Format(time.DateOnly), want.Weekday())
		}
		if back := daysFromCivil(y, m, d); back != day {
			t.Fatalf("daysFromCivil(civilFromDays(%d)) = %d", day, back)
		}
	}
	tests := []struct {
		in     string
		wantOK bool
	}{
		{"2024-02-29T23:59:59", true},
		{"2023-02-29T00:00:00", false},
		{"2100-02-29T00:00:00", false},
		{"2000-02-29T00:00:00", true},
		{"2026-04-31T08:00:00", false},
		{"2026-01-15 08:00:00", false},
		{"2026-01-15T24:00:00", false},
		{"2026-01-15T08:60:00", false},
		{"2026-01-15T08:00:00Z", false},
		{"2026-1-15T08:00:00", false},
		{"2026-01-15T08:0a:00", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			wall, _, err := parseWall(tt.in)
			ref, refErr := proto.ParseLocalTime(tt.in)
			if (err == nil) != tt.wantOK || (refErr == nil) != tt.wantOK {
				t.Fatalf("parseWall error %v, proto.ParseLocalTime error %v, want ok=%v", err, refErr, tt.wantOK)
			}
			if err == nil && wall != ref.Unix() {
				t.Fatalf("parseWall = %d, want %d", wall, ref.Unix())
			}
		})
	}
}

func TestRoundRule(t *testing.T) {
	at := func(s string) int64 { w, _, _ := parseWall(s); return w }
	tests := []struct {
		rule      RoundRule
		in, want  string
		different bool
	}{
		{RoundRule{900, "up"}, "2026-01-14T08:07:00", "2026-01-14T08:15:00", true},
		{RoundRule{900, "up"}, "2026-01-14T08:15:00", "2026-01-14T08:15:00", false},
		{RoundRule{900, "down"}, "2026-01-14T08:14:59", "2026-01-14T08:00:00", true},
		{RoundRule{900, "nearest"}, "2026-01-14T08:07:29", "2026-01-14T08:00:00", true},
		{RoundRule{900, "nearest"}, "2026-01-14T08:07:30", "2026-01-14T08:15:00", true},
		{RoundRule{900, "up"}, "2026-01-14T23:50:00", "2026-01-15T00:00:00", true},
		{RoundRule{0, ""}, "2026-01-14T08:07:00", "2026-01-14T08:07:00", false},
		{RoundRule{420, "down"}, "2026-01-14T00:13:00", "2026-01-14T00:07:00", true},
	}
	for _, tt := range tests {
		t.Run(tt.rule.Mode+" "+tt.in, func(t *testing.T) {
			if got := formatWall(tt.rule.apply(at(tt.in))); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
