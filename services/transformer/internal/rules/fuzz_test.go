package rules

import (
	"errors"
	"testing"
	"time"

	"github.com/punchflow/punchflow/proto"
)

// FuzzApply feeds arbitrary punches to the payroll rules: Apply never
// panics, and returns either a *Rejection or an event that satisfies the
// contract with its id derived as documented.
func FuzzApply(f *testing.F) {
	f.Add("hq", "SF-1", "0042", "2026-03-08T02:30:00", 255, int64(90_000), "", int64(0))
	f.Add("plant", "D1", "7", "2026-01-27T05:00:00", 1, int64(-3_600_000), "Asia/Kolkata", int64(86400))
	f.Add("mars", "OLD-1", "x", "2000-01-01T00:00:00", 2, int64(-820_000_000_000), "Europe/Berlin", int64(0))
	f.Add("hq", "BER-1", "0043", "9999-12-31T23:59:59", 3, int64(1<<62), "Mars/Olympus", int64(-5))
	r, err := Parse([]byte(payrollRules))
	if err != nil {
		f.Fatal(err)
	}
	ros := testRoster(f)
	f.Fuzz(func(t *testing.T, site, serial, user, devTime string, state int, offsetMS int64, zone string, collectedOffset int64) {
		p := proto.RawPunch{Source: "fuzz", Site: site, DeviceSerial: serial, UserID: user, DeviceTime: devTime,
			State: state, DeviceTimeZone: zone, RunID: "r", ClockOffsetMS: &offsetMS}
		if wall, err := proto.ParseLocalTime(devTime); err == nil {
			p.CollectedAt = wall.Add(time.Duration(collectedOffset) * time.Second)
		}
		p = proto.NewRawPunch(p)
		ev, err := r.Apply(p, ros, proto.Lineage{})
		if err != nil {
			var rej *Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("Apply error %v is not a *Rejection", err)
			}
			return
		}
		if p.Site == "" || p.DeviceSerial == "" || p.UserID == "" {
			return // the decoder refuses these before Apply; the event would lack them too
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("event breaks the contract: %v\n%+v", err, ev)
		}
		if ev.ID != proto.AttendanceID(p.ID, r.Version, ev.RosterVersion) {
			t.Fatalf("id not derived from the input id, rules and roster version")
		}
	})
}
