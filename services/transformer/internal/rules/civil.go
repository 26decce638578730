package rules

import (
	"fmt"
	"time"
)

// Civil (zone-less) time arithmetic on plain integers, so that the per-punch
// path needs no time.Parse, time.Format or time.Date. A civil day is counted
// in days since 1970-01-01; a wall clock is seconds since 1970-01-01T00:00:00
// of the same, zone-less calendar.

const secondsPerDay = 86400

// daysFromCivil returns the day number of y-m-d in the proleptic Gregorian
// calendar (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y, m, d int) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	yy := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	m = int(mp + 3)
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		yy++
	}
	return int(yy), m, d
}

// floorDiv is division rounding toward negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// weekday of a day number (1970-01-01 was a Thursday).
func weekday(day int64) time.Weekday {
	w := (day + 4) % 7
	if w < 0 {
		w += 7
	}
	return time.Weekday(w)
}

func daysIn(y, m int) int {
	switch m {
	case 4, 6, 9, 11:
		return 30
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	}
	return 31
}

// parseWall parses proto.LocalTimeLayout (YYYY-MM-DDThh:mm:ss, a date that
// exists) into wall-clock seconds and the year.
func parseWall(s string) (wall int64, year int, err error) {
	if len(s) != 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, 0, fmt.Errorf("device time %q is not YYYY-MM-DDThh:mm:ss", s)
	}
	num := func(i, n int) int {
		v := 0
		for j := i; j < i+n; j++ {
			c := s[j]
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d, h, mi, se := num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59 || d > daysIn(y, mo) {
		return 0, 0, fmt.Errorf("device time %q is not a valid YYYY-MM-DDThh:mm:ss", s)
	}
	return daysFromCivil(y, mo, d)*secondsPerDay + int64(h*3600+mi*60+se), y, nil
}

// formatDate renders a day number as YYYY-MM-DD.
func formatDate(day int64) string {
	y, m, d := civilFromDays(day)
	if y < 0 || y > 9999 {
		return fmt.Sprintf("%04d-%02d-%02d", y, m, d)
	}
	b := [10]byte{
		byte('0' + y/1000), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-',
		byte('0' + m/10), byte('0' + m%10), '-',
		byte('0' + d/10), byte('0' + d%10),
	}
	return string(b[:])
}

// formatWall renders wall-clock seconds as YYYY-MM-DDThh:mm:ss (for traces).
func formatWall(wall int64) string {
	day := floorDiv(wall, secondsPerDay)
	sec := wall - day*secondsPerDay
	return fmt.Sprintf("%sT%02d:%02d:%02d", formatDate(day), sec/3600, sec/60%60, sec%60)
}

// formatClock renders seconds since midnight as hh:mm, with "+1d" when the
// time is on the next day and "-1d" when it is on the day before.
func formatClock(sec int64) string {
	day := floorDiv(sec, secondsPerDay)
	sec -= day * secondsPerDay
	s := fmt.Sprintf("%02d:%02d", sec/3600, sec%3600/60)
	switch {
	case day > 0:
		s += fmt.Sprintf("+%dd", day)
	case day < 0:
		s += fmt.Sprintf("%dd", day)
	}
	return s
}

// parseClock parses "hh:mm" or "hh:mm:ss" into seconds since midnight.
func parseClock(s string) (int64, error) {
	var h, m, sec int
	var err error
	switch len(s) {
	case 5:
		_, err = fmt.Sscanf(s, "%2d:%2d", &h, &m)
	case 8:
		_, err = fmt.Sscanf(s, "%2d:%2d:%2d", &h, &m, &sec)
	default:
		err = fmt.Errorf("bad length")
	}
	if err != nil || h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 59 || s[2] != ':' {
		return 0, fmt.Errorf("%q is not a time of day as hh:mm (for example 08:30 or 22:00)", s)
	}
	return int64(h*3600 + m*60 + sec), nil
}
