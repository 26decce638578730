package zk

import (
	"fmt"
	"testing"
)

func BenchmarkDecodeAttendance(b *testing.B) {
	for _, size := range []int{AttendanceSize8, AttendanceSize16, AttendanceSize40} {
		var data []byte
		for i := range 50_000 {
			r := AttendanceRecord{UID: 1 + i%100, UserID: "1001", DeviceTime: date(2024, 1, 1+i%28, 8, i%60, 0), VerifyMode: 1}
			var err error
			if data, err = AppendAttendance(data, r, size); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("%d-byte", size), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if recs, bad, err := DecodeAttendance(data, size); err != nil || len(bad) != 0 || len(recs) != 50_000 {
					b.Fatalf("%d records, %d bad, %v", len(recs), len(bad), err)
				}
			}
		})
	}
}
