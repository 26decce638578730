package rules

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/punchflow/punchflow/proto"
)

const sample = `
default_time_zone: UTC
sites:
  hq:
    time_zone: America/New_York
  plant:
    time_zone: Asia/Kolkata
earliest_year: 2010
max_future: 2h
`

func mustParse(t *testing.T, s string) *Rules {
	t.Helper()
	r, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return r
}

func punch(site, devTime string, state int) proto.RawPunch {
	return proto.NewRawPunch(proto.RawPunch{
		Source: "csv:test", SourceKind: "csv", Site: site, DeviceSerial: "DEV1", UserID: "0042",
		DeviceTime: devTime, State: state, VerifyMode: 1, RunID: "run-1",
		CollectedAt: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC),
	})
}

func TestApply(t *testing.T) {
	r := mustParse(t, sample)
	tests := []struct {
		name      string
		p         proto.RawPunch
		wantAt    string
		wantDir   string
		wantDate  string
		wantFlags []string
		wantCode  string
	}{
		{name: "plain EST check-in", p: punch("hq", "2026-01-15T08:59:00", 0), wantAt: "2026-01-15T13:59:00Z", wantDir: "in", wantDate: "2026-01-15"},
		{name: "EDT check-out", p: punch("hq", "2026-07-15T17:30:00", 1), wantAt: "2026-07-15T21:30:00Z", wantDir: "out", wantDate: "2026-07-15"},
		{name: "half-hour zone", p: punch("plant", "2026-03-01T09:00:00", 4), wantAt: "2026-03-01T03:30:00Z", wantDir: "in", wantDate: "2026-03-01", wantFlags: []string{FlagWeekend}},
		{name: "spring-forward gap maps after the gap", p: punch("hq", "2026-03-08T02:30:00", 0), wantAt: "2026-03-08T07:30:00Z", wantDir: "in", wantDate: "2026-03-08", wantFlags: []string{FlagDSTGap, FlagWeekend}},
		{name: "fall-back overlap takes the earlier instant", p: punch("hq", "2026-11-01T01:30:00", 1), wantAt: "2026-11-01T05:30:00Z", wantDir: "out", wantDate: "2026-11-01", wantFlags: []string{FlagDSTOverlap, FlagWeekend}},
		{name: "unlisted site uses the default zone", p: punch("branch", "2026-05-05T10:00:00", 2), wantAt: "2026-05-05T10:00:00Z", wantDir: "break_out", wantDate: "2026-05-05", wantFlags: []string{FlagDefaultZone}},
		{name: "unmapped state code without a shift is unknown and flagged", p: punch("hq", "2026-01-15T12:00:00", 77), wantAt: "2026-01-15T17:00:00Z", wantDir: "unknown", wantDate: "2026-01-15", wantFlags: []string{FlagUnknownState}},
		{name: "state 255 without a shift cannot be decided", p: punch("hq", "2026-01-15T12:00:00", 255), wantAt: "2026-01-15T17:00:00Z", wantDir: "unknown", wantDate: "2026-01-15"},
		{name: "reset device clock", p: punch("hq", "2000-01-01T00:00:00", 0), wantCode: RejectTooOld},
		{name: "clock far ahead", p: punch("hq", "2026-11-03T12:00:00", 0), wantCode: RejectInFuture},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := r.Apply(tt.p, nil, proto.Lineage{RawSubject: "raw.punch.x.y", RawStream: "RAW", RawSequence: 7})
			if tt.wantCode != "" {
				var rej *Rejection
				if !errors.As(err, &rej) || rej.Code != tt.wantCode {
					t.Fatalf("Apply error = %v, want rejection %s", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if got := ev.OccurredAt.Format(time.RFC3339); got != tt.wantAt {
				t.Errorf("OccurredAt = %s, want %s", got, tt.wantAt)
			}
			if ev.Direction != tt.wantDir {
				t.Errorf("Direction = %s, want %s", ev.Direction, tt.wantDir)
			}
			if ev.WorkDate != tt.wantDate {
				t.Errorf("WorkDate = %s, want %s", ev.WorkDate, tt.wantDate)
			}
			if strings.Join(ev.Flags, ",") != strings.Join(tt.wantFlags, ",") {
				t.Errorf("Flags = %v, want %v", ev.Flags, tt.wantFlags)
			}
			if ev.ID != proto.CleanID(tt.p.ID, r.Version) || ev.RulesVersion != r.Version {
				t.Errorf("id %s / rules version %s not derived from input id and rules version", ev.ID, ev.RulesVersion)
			}
			if ev.Lineage.RawID != tt.p.ID || ev.Lineage.RawSequence != 7 || ev.Lineage.RunID != "run-1" {
				t.Errorf("Lineage = %+v", ev.Lineage)
			}
			if err := ev.Validate(); err != nil {
				t.Errorf("event breaks the contract: %v", err)
			}
		})
	}
}

func TestApplyUnknownSiteWithoutDefault(t *testing.T) {
	r := mustParse(t, "sites:\n  hq:\n    time_zone: Europe/Berlin\n")
	_, err := r.Apply(punch("elsewhere", "2026-01-15T08:00:00", 0), nil, proto.Lineage{})
	var rej *Rejection
	if !errors.As(err, &rej) || rej.Code != RejectUnknownSite {
		t.Fatalf("got %v, want %s", err, RejectUnknownSite)
	}
}

func TestVersionIsContentHash(t *testing.T) {
	a := mustParse(t, sample)
	b := mustParse(t, sample)
	c := mustParse(t, sample+"\n# a comment changes the version\n")
	if a.Version != b.Version || a.Version == c.Version || len(a.Version) != 12 {
		t.Fatalf("versions %q %q %q", a.Version, b.Version, c.Version)
	}
}
