package zksim

import (
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// TestBandwidth: a device limited to a byte rate still sends every record
// correctly, over TCP and UDP, and cannot send faster than the limit (the
// dataset alone takes size/rate; only this lower bound is checked, never a
// speed).
func TestBandwidth(t *testing.T) {
	const rate = 200_000 // bytes per second
	for _, tt := range []struct {
		name string
		opts []zk.Option
	}{
		{"tcp", nil},
		{"udp", []zk.Option{zk.WithUDP()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dev := start(t, Config{Seed: 3, Records: 2500, Faults: Faults{Bandwidth: rate}}) // 100 000 bytes of records
			c := dial(t, dev, tt.opts...)
			start := time.Now()
			recs, bad, err := readAttendance(testContext(t, 20*time.Second), c)
			took := time.Since(start)
			if err != nil || len(bad) != 0 {
				t.Fatalf("read: %v, %d bad records", err, len(bad))
			}
			sameRecords(t, recs, dev.Attendance())
			if min := time.Duration(2500*zk.AttendanceSize40) * time.Second / rate; took < min {
				t.Errorf("read %d bytes in %v at %d bytes/s: want at least %v", 2500*zk.AttendanceSize40, took, rate, min)
			}
		})
	}
}

func TestBandwidthInvalid(t *testing.T) {
	if _, err := NewDevice(Config{Faults: Faults{Bandwidth: -1}}); err == nil {
		t.Fatal("NewDevice accepted a negative bandwidth")
	}
}
