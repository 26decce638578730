// Package csvsource reads attendance punches from CSV files dropped into a
// folder: each file is processed once (checkpointed in KV by content, so a
// restart resumes where it stopped), every line becomes a raw punch or a dead
// letter naming the file and line, and finished files are moved aside.
package csvsource

import (
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/punchflow/punchflow/proto"
)

// Fields a punch CSV can carry. user_id and device_time are required; site
// and device_serial fall back to the source's defaults.
const (
	FieldSite       = "site"
	FieldDevice     = "device_serial"
	FieldUserID     = "user_id"
	FieldUID        = "uid"
	FieldDeviceTime = "device_time"
	FieldState      = "state"
	FieldVerifyMode = "verify_mode"
	FieldWorkCode   = "work_code"
	FieldTimeZone   = "time_zone"
)

var knownFields = []string{FieldSite, FieldDevice, FieldUserID, FieldUID, FieldDeviceTime, FieldState, FieldVerifyMode, FieldWorkCode, FieldTimeZone}

// Mapping maps punch fields to the CSV header names that hold them. A field
// without an entry is read from the column of its own name.
type Mapping map[string]string

// ParseMapping reads "user_id=EmpNo,device_time=Timestamp".
func ParseMapping(s string) (Mapping, error) {
	m := Mapping{}
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	for _, pair := range strings.Split(s, ",") {
		field, col, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || col == "" {
			return nil, fmt.Errorf("column mapping %q: write field=Header, for example user_id=EmpNo", pair)
		}
		if !slices.Contains(knownFields, field) {
			return nil, fmt.Errorf("column mapping %q: unknown field %q (fields: %s)", pair, field, strings.Join(knownFields, ", "))
		}
		m[field] = col
	}
	return m, nil
}

// Layout is how a file's columns are found, from its header line.
type Layout struct {
	index map[string]int // field -> column
	width int
}

// NewLayout matches a header line against the mapping. Header names compare
// case-insensitively and without surrounding spaces.
func NewLayout(header []string, m Mapping, defaults Defaults) (*Layout, error) {
	cols := map[string]int{}
	for i, h := range header {
		cols[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	l := &Layout{index: map[string]int{}, width: len(header)}
	for _, f := range knownFields {
		name := f
		if c, ok := m[f]; ok {
			name = c
		}
		if i, ok := cols[strings.ToLower(name)]; ok {
			l.index[f] = i
		}
	}
	var missing []string
	for _, f := range []string{FieldUserID, FieldDeviceTime} {
		if _, ok := l.index[f]; !ok {
			missing = append(missing, f)
		}
	}
	if _, ok := l.index[FieldDevice]; !ok && defaults.Device == "" {
		missing = append(missing, FieldDevice+" (or set a default device)")
	}
	if _, ok := l.index[FieldSite]; !ok && defaults.Site == "" {
		missing = append(missing, FieldSite+" (or set a default site)")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("header %q lacks %s: rename the columns or map them with field=Header", strings.Join(header, ","), strings.Join(missing, ", "))
	}
	return l, nil
}

// Defaults fill fields a file has no column for.
type Defaults struct {
	Site     string
	Device   string
	TimeZone string
	// TimeLayouts are tried in order for device_time.
	TimeLayouts []string
}

// ErrBadLine wraps every line-level error.
var ErrBadLine = errors.New("bad line")

// SplitLine parses one CSV line into fields.
func SplitLine(line string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(line))
	r.FieldsPerRecord = -1
	rec, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: not valid CSV: %v", ErrBadLine, err)
	}
	return rec, nil
}

// Punch builds the identity and device fields of a raw punch from one line's
// fields. The caller fills Source, SourceKind, CollectedAt and RunID.
func (l *Layout) Punch(rec []string, d Defaults) (proto.RawPunch, error) {
	if len(rec) != l.width {
		return proto.RawPunch{}, fmt.Errorf("%w: %d fields, the header has %d", ErrBadLine, len(rec), l.width)
	}
	get := func(f, def string) string {
		if i, ok := l.index[f]; ok {
			if v := strings.TrimSpace(rec[i]); v != "" {
				return v
			}
		}
		return def
	}
	num := func(f string, def, max int) (int, error) {
		s := get(f, "")
		if s == "" {
			return def, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > max {
			return 0, fmt.Errorf("%w: %s %q must be a whole number from 0 to %d", ErrBadLine, f, s, max)
		}
		return n, nil
	}
	p := proto.RawPunch{
		Site:           get(FieldSite, d.Site),
		DeviceSerial:   get(FieldDevice, d.Device),
		UserID:         get(FieldUserID, ""),
		DeviceTimeZone: get(FieldTimeZone, d.TimeZone),
	}
	if p.UserID == "" {
		return p, fmt.Errorf("%w: user_id is empty", ErrBadLine)
	}
	if p.Site == "" || p.DeviceSerial == "" {
		return p, fmt.Errorf("%w: site or device_serial is empty and has no default", ErrBadLine)
	}
	raw := get(FieldDeviceTime, "")
	t, err := parseTime(raw, d.TimeLayouts)
	if err != nil {
		return p, err
	}
	p.DeviceTime = proto.FormatLocalTime(t)
	if p.State, err = num(FieldState, 0, 255); err != nil {
		return p, err
	}
	if p.VerifyMode, err = num(FieldVerifyMode, 0, 255); err != nil {
		return p, err
	}
	if p.UID, err = num(FieldUID, 0, 1<<31-1); err != nil {
		return p, err
	}
	if p.WorkCode, err = num(FieldWorkCode, 0, 1<<31-1); err != nil {
		return p, err
	}
	return p, nil
}

// DefaultTimeLayouts are the device-time layouts accepted when none are configured.
var DefaultTimeLayouts = []string{"2006-01-02 15:04:05", proto.LocalTimeLayout, "2006/01/02 15:04:05", "2006-01-02 15:04"}

func parseTime(s string, layouts []string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("%w: device_time is empty", ErrBadLine)
	}
	if len(layouts) == 0 {
		layouts = DefaultTimeLayouts
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: device_time %q matches none of the layouts %q", ErrBadLine, s, layouts)
}
