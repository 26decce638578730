package zk

import (
	"fmt"
	"time"
)

// Year range the device's encodings can represent.
const (
	MinYear = 2000
	MaxYear = 2099
)

// EncodeTime packs t's wall clock (its year … second in t's own location)
// into the device's u32 time: seconds in a calendar of 12 months of 31 days,
// counted from 2000-01-01 00:00:00 (zkemsdk EncodeTime). It fails with
// ErrInvalidTime outside the years 2000–2099.
func EncodeTime(t time.Time) (uint32, error) {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	if y < MinYear || y > MaxYear {
		return 0, fmt.Errorf("encode time %s: year %d outside %d–%d: %w", t.Format(time.DateTime), y, MinYear, MaxYear, ErrInvalidTime)
	}
	days := uint32((y-MinYear)*12*31 + (int(mo)-1)*31 + d - 1)
	return days*86400 + uint32((h*60+mi)*60+s), nil
}

// DecodeTime unpacks the device's u32 time into its wall clock, returned in
// time.UTC as a zone-less local time (see the package comment). It fails with
// ErrInvalidTime when the value names a date that does not exist (31 April,
// 30 February …) or a year after 2099.
func DecodeTime(v uint32) (time.Time, error) {
	t := v
	sec := int(t % 60)
	t /= 60
	minute := int(t % 60)
	t /= 60
	hour := int(t % 24)
	t /= 24
	day := int(t%31) + 1
	t /= 31
	month := time.Month(t%12) + 1
	year := int(t/12) + MinYear
	tm, err := wallClock(year, month, day, hour, minute, sec)
	if err != nil {
		return time.Time{}, fmt.Errorf("decode time %#08x: %w", v, err)
	}
	return tm, nil
}

// EncodeEventTime returns the 6-byte time of realtime events:
// YY MM DD hh mm ss as binary values, YY = year − 2000.
func EncodeEventTime(t time.Time) ([6]byte, error) {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	if y < MinYear || y > MaxYear {
		return [6]byte{}, fmt.Errorf("encode event time %s: year %d outside %d–%d: %w", t.Format(time.DateTime), y, MinYear, MaxYear, ErrInvalidTime)
	}
	return [6]byte{byte(y - MinYear), byte(mo), byte(d), byte(h), byte(mi), byte(s)}, nil
}

// DecodeEventTime decodes the 6-byte realtime event time (see
// EncodeEventTime) into a zone-less wall clock in time.UTC. It fails with
// ErrInvalidTime when b is not 6 bytes or a field is out of range.
func DecodeEventTime(b []byte) (time.Time, error) {
	if len(b) != 6 {
		return time.Time{}, fmt.Errorf("decode event time: %d bytes, want 6: %w", len(b), ErrInvalidTime)
	}
	if b[0] > MaxYear-MinYear || b[1] < 1 || b[1] > 12 || b[2] < 1 || b[3] > 23 || b[4] > 59 || b[5] > 59 {
		return time.Time{}, fmt.Errorf("decode event time % x: field out of range: %w", b, ErrInvalidTime)
	}
	tm, err := wallClock(int(b[0])+MinYear, time.Month(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5]))
	if err != nil {
		return time.Time{}, fmt.Errorf("decode event time % x: %w", b, err)
	}
	return tm, nil
}

// wallClock builds a UTC-located wall clock, rejecting dates that time.Date
// would normalise (such as 30 February becoming 1 March).
func wallClock(year int, month time.Month, day, hour, minute, sec int) (time.Time, error) {
	if year < MinYear || year > MaxYear {
		return time.Time{}, fmt.Errorf("year %d outside %d–%d: %w", year, MinYear, MaxYear, ErrInvalidTime)
	}
	t := time.Date(year, month, day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day || t.Month() != month {
		return time.Time{}, fmt.Errorf("no such date %04d-%02d-%02d: %w", year, month, day, ErrInvalidTime)
	}
	return t, nil
}
