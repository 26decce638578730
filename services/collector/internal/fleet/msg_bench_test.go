package fleet

import (
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// BenchmarkPunchMessage is the collector's cost of one raw punch message:
// identity, contract fields, JSON and headers.
func BenchmarkPunchMessage(b *testing.B) {
	dev := &Device{Serial: "CQUJ190460155", Site: "hq", TimeZone: "Europe/Berlin"}
	pk := newPunches(dev, "6f1d2c3b4a5948e7b0c1d2e3f4a5b6c7", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", offsetMS(-2140))
	r := zk.AttendanceRecord{UID: 17, UserID: "00042", DeviceTime: time.Date(2024, 3, 11, 8, 57, 31, 0, time.UTC), VerifyMode: 1, WorkCode: 3}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pk.msg(&r); err != nil {
			b.Fatal(err)
		}
	}
}
