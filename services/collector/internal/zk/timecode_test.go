package zk

import (
	"errors"
	"testing"
	"time"
)

func date(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

func TestPackedTime(t *testing.T) {
	tests := []struct {
		name   string
		t      time.Time
		packed uint32
	}{
		{"epoch", date(2000, 1, 1, 0, 0, 0), 0},
		{"2024-01-15 08:00", date(2024, 1, 15, 8, 0, 0), 772617600},
		{"leap day", date(2024, 2, 29, 23, 59, 58), 776563198},
		{"last second", date(2099, 12, 31, 23, 59, 59), 3214079999},
		{"adrobinoga record", date(2018, 6, 25, 17, 50, 35), 0x2368B36B},
		{"pyzk #99 8-byte record", date(2016, 1, 1, 19, 2, 0), 0x1EA7EBA8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeTime(tt.t)
			if err != nil || got != tt.packed {
				t.Errorf("EncodeTime = %d, %v; want %d", got, err, tt.packed)
			}
			back, err := DecodeTime(tt.packed)
			if err != nil || !back.Equal(tt.t) || back.Location() != time.UTC {
				t.Errorf("DecodeTime = %v, %v; want %v", back, err, tt.t)
			}
		})
	}
}

func TestEncodeTimeUsesWallClock(t *testing.T) {
	loc := time.FixedZone("UTC+3", 3*3600)
	got, err := EncodeTime(time.Date(2024, 1, 15, 8, 0, 0, 0, loc))
	if err != nil || got != 772617600 {
		t.Errorf("EncodeTime in UTC+3 = %d, %v; want the wall clock 772617600", got, err)
	}
}

func TestPackedTimeInvalid(t *testing.T) {
	feb30 := uint32(((24*12+1)*31 + 29) * 86400) // 2024-02-30
	tests := []struct {
		name   string
		packed uint32
	}{
		{"30 February", feb30},
		{"31 April", uint32(((24*12+3)*31 + 30) * 86400)},
		{"year 2100", 3214079999 + 1},
		{"max u32 (year 2133)", 0xFFFFFFFF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := DecodeTime(tt.packed); !errors.Is(err, ErrInvalidTime) {
				t.Errorf("DecodeTime(%#x) = %v, %v; want ErrInvalidTime", tt.packed, got, err)
			}
		})
	}
	for _, tm := range []time.Time{date(1999, 12, 31, 23, 59, 59), date(2100, 1, 1, 0, 0, 0)} {
		t.Run("encode "+tm.Format(time.DateOnly), func(t *testing.T) {
			if _, err := EncodeTime(tm); !errors.Is(err, ErrInvalidTime) {
				t.Errorf("EncodeTime(%v) = %v, want ErrInvalidTime", tm, err)
			}
		})
	}
}

func TestEventTime(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want time.Time
	}{
		{"adrobinoga realtime example", []byte{0x12, 0x06, 0x19, 0x11, 0x29, 0x05}, date(2018, 6, 25, 17, 41, 5)},
		{"first", []byte{0, 1, 1, 0, 0, 0}, date(2000, 1, 1, 0, 0, 0)},
		{"last", []byte{99, 12, 31, 23, 59, 59}, date(2099, 12, 31, 23, 59, 59)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEventTime(tt.b)
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("DecodeEventTime = %v, %v; want %v", got, err, tt.want)
			}
			enc, err := EncodeEventTime(got)
			if err != nil || string(enc[:]) != string(tt.b) {
				t.Errorf("EncodeEventTime = % x, %v; want % x", enc, err, tt.b)
			}
		})
	}
}

func TestEventTimeInvalid(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"short", []byte{18, 6, 25, 17, 41}},
		{"long", []byte{18, 6, 25, 17, 41, 5, 0}},
		{"month 0", []byte{18, 0, 25, 17, 41, 5}},
		{"month 13", []byte{18, 13, 25, 17, 41, 5}},
		{"day 0", []byte{18, 6, 0, 17, 41, 5}},
		{"31 June", []byte{18, 6, 31, 17, 41, 5}},
		{"hour 24", []byte{18, 6, 25, 24, 41, 5}},
		{"minute 60", []byte{18, 6, 25, 17, 60, 5}},
		{"second 60", []byte{18, 6, 25, 17, 41, 60}},
		{"year 2100", []byte{100, 1, 1, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := DecodeEventTime(tt.b); !errors.Is(err, ErrInvalidTime) {
				t.Errorf("DecodeEventTime(% x) = %v, %v; want ErrInvalidTime", tt.b, got, err)
			}
		})
	}
}
