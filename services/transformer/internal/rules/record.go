package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/punchflow/punchflow/proto"
)

// Field types of a record mapping (the contract's, proto.Field*).
const (
	TypeString = proto.FieldString
	TypeInt    = proto.FieldInt
	TypeNumber = proto.FieldNumber
	TypeBool   = proto.FieldBool
	TypeTime   = proto.FieldTime
	TypeDate   = proto.FieldDate
)

// RecordMapping maps the raw records of one source to typed fields.
type RecordMapping struct {
	Source string
	Fields []FieldMapping
	// NaturalKey lists the fields whose values, joined with "|", form the
	// clean record's natural key; empty keeps the raw record's.
	NaturalKey []string
	// Timestamp names a time field that becomes the record's occurred_at;
	// empty keeps the raw record's observed_at.
	Timestamp string
	// Zone reads times that carry no offset (default UTC).
	Zone *time.Location
}

// FieldMapping is one typed field taken from the payload.
type FieldMapping struct {
	Name string
	// Path is the dot-separated path in the payload ("customer.address.city";
	// a number indexes an array: "items.0.sku").
	Path     string
	path     []string
	Type     string
	Required bool
	// Layout reads a time: "" (RFC 3339, or YYYY-MM-DD[T ]hh:mm:ss without
	// an offset, read in the mapping's zone), "unix", "unix_ms", or a Go
	// time layout. For a date, a Go layout (default 2006-01-02).
	Layout string
}

type recordFile struct {
	NaturalKey []string             `yaml:"natural_key"`
	Timestamp  string               `yaml:"timestamp"`
	TimeZone   string               `yaml:"time_zone"`
	Fields     map[string]fieldFile `yaml:"fields"`
}

type fieldFile struct {
	Path     string `yaml:"path"`
	Type     string `yaml:"type"`
	Required bool   `yaml:"required"`
	Layout   string `yaml:"layout"`
}

func (p *parser) record(src string, rf recordFile) *RecordMapping {
	path := func(k ...string) []string { return append([]string{"records", src}, k...) }
	m := &RecordMapping{Source: src, NaturalKey: rf.NaturalKey, Timestamp: rf.Timestamp, Zone: time.UTC}
	if rf.TimeZone != "" {
		if loc := p.zone(path("time_zone"), rf.TimeZone, "Europe/Berlin"); loc != nil {
			m.Zone = loc
		}
	}
	if len(rf.Fields) == 0 {
		p.errf(path("fields"), "list at least one field (name: {path: ..., type: ...})")
	}
	types := map[string]string{}
	for _, name := range sortedKeys(rf.Fields) {
		ff := rf.Fields[name]
		fm := FieldMapping{Name: name, Path: ff.Path, Type: ff.Type, Required: ff.Required, Layout: ff.Layout}
		if fm.Path == "" {
			fm.Path = name
		}
		fm.path = strings.Split(fm.Path, ".")
		for _, seg := range fm.path {
			if seg == "" {
				p.errf(path("fields", name, "path"), "%q has an empty segment", fm.Path)
			}
		}
		switch fm.Type {
		case TypeString, TypeInt, TypeNumber, TypeBool, TypeTime, TypeDate:
		case "":
			p.errf(path("fields", name), "type is required: string, int, number, bool, time or date")
		default:
			p.errf(path("fields", name, "type"), "%q: use string, int, number, bool, time or date", fm.Type)
		}
		if fm.Layout != "" && fm.Type != TypeTime && fm.Type != TypeDate {
			p.errf(path("fields", name, "layout"), "only time and date fields take a layout")
		}
		types[name] = fm.Type
		m.Fields = append(m.Fields, fm)
	}
	for _, k := range rf.NaturalKey {
		if _, ok := types[k]; !ok {
			p.errf(path("natural_key"), "%q is not one of the fields", k)
		}
	}
	if rf.Timestamp != "" {
		if t, ok := types[rf.Timestamp]; !ok || t != TypeTime {
			p.errf(path("timestamp"), "%q must name a field of type time", rf.Timestamp)
		}
	}
	return m
}

// ApplyRecord turns a raw business record into a clean record. A source
// with a mapping gets its typed fields, natural key and timestamp from the
// payload; a source without one passes through (payload, natural key and
// observed time unchanged, no fields). The id is proto.CleanID(rec.ID,
// r.Version); ProcessedAt is left for the caller. It returns a *Rejection
// when the payload lacks a required field or a value has the wrong type.
func (r *Rules) ApplyRecord(rec proto.RawRecord, lin proto.Lineage) (proto.CleanRecord, error) {
	lin.RawID = rec.ID
	if lin.RunID == "" {
		lin.RunID = rec.RunID
	}
	out := proto.CleanRecord{
		ID:            proto.CleanID(rec.ID, r.Version),
		SchemaVersion: proto.SchemaVersion,
		RulesVersion:  r.Version,
		Source:        rec.Source,
		NaturalKey:    rec.NaturalKey,
		OccurredAt:    rec.ObservedAt,
		Payload:       rec.Payload,
		Lineage:       lin,
	}
	m := r.Records[rec.Source]
	if m == nil {
		return out, nil
	}
	var doc any
	if _, err := json.Parse(rec.Payload, &doc, json.UseNumber); err != nil {
		return proto.CleanRecord{}, &Rejection{Code: RejectBadPayload, Message: fmt.Sprintf("source %s record %s: payload is not JSON: %v", rec.Source, rec.NaturalKey, err)}
	}
	fields := make(map[string]any, len(m.Fields))
	times := map[string]time.Time{}
	for _, f := range m.Fields {
		raw, ok := lookupPath(doc, f.path)
		if !ok || raw == nil {
			if f.Required {
				return proto.CleanRecord{}, &Rejection{Code: RejectMissingField,
					Message: fmt.Sprintf("source %s record %s: required field %s (payload path %s) is missing or null", rec.Source, rec.NaturalKey, f.Name, f.Path)}
			}
			continue
		}
		v, t, err := convert(raw, f, m.Zone)
		if err != nil {
			return proto.CleanRecord{}, &Rejection{Code: RejectBadField,
				Message: fmt.Sprintf("source %s record %s: field %s (payload path %s): %v", rec.Source, rec.NaturalKey, f.Name, f.Path, err)}
		}
		fields[f.Name] = v
		if f.Type == TypeTime {
			times[f.Name] = t
		}
	}
	if len(m.NaturalKey) > 0 {
		parts := make([]string, len(m.NaturalKey))
		for i, k := range m.NaturalKey {
			v, ok := fields[k]
			if !ok {
				return proto.CleanRecord{}, &Rejection{Code: RejectMissingField,
					Message: fmt.Sprintf("source %s record %s: natural key field %s is missing", rec.Source, rec.NaturalKey, k)}
			}
			parts[i] = fmt.Sprint(v)
		}
		out.NaturalKey = strings.Join(parts, "|")
	}
	if m.Timestamp != "" {
		if t, ok := times[m.Timestamp]; ok {
			t = t.UTC()
			out.OccurredAt = &t
		}
	}
	out.Fields = fields
	return out, nil
}

func lookupPath(doc any, path []string) (any, bool) {
	cur := doc
	for _, seg := range path {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// convert turns a JSON value into the field's type. Times come back as RFC
// 3339 strings in UTC (and as a time.Time for the timestamp).
func convert(v any, f FieldMapping, zone *time.Location) (any, time.Time, error) {
	switch f.Type {
	case TypeString:
		switch x := v.(type) {
		case string:
			return x, time.Time{}, nil
		case json.Number:
			return x.String(), time.Time{}, nil
		case bool:
			return strconv.FormatBool(x), time.Time{}, nil
		}
	case TypeInt:
		var s string
		switch x := v.(type) {
		case json.Number:
			s = x.String()
		case string:
			s = strings.TrimSpace(x)
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, time.Time{}, nil
		}
		if fl, err := strconv.ParseFloat(s, 64); err == nil && fl == math.Trunc(fl) && math.Abs(fl) < 1<<53 {
			return int64(fl), time.Time{}, nil
		}
		return nil, time.Time{}, fmt.Errorf("%s is not a whole number", describe(v))
	case TypeNumber:
		var s string
		switch x := v.(type) {
		case json.Number:
			s = x.String()
		case string:
			s = strings.TrimSpace(x)
		}
		if fl, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(fl, 0) && !math.IsNaN(fl) {
			return fl, time.Time{}, nil
		}
		return nil, time.Time{}, fmt.Errorf("%s is not a number", describe(v))
	case TypeBool:
		switch x := v.(type) {
		case bool:
			return x, time.Time{}, nil
		case string:
			if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
				return b, time.Time{}, nil
			}
		case json.Number:
			switch x.String() {
			case "0":
				return false, time.Time{}, nil
			case "1":
				return true, time.Time{}, nil
			}
		}
		return nil, time.Time{}, fmt.Errorf("%s is not a boolean (true/false, 1/0)", describe(v))
	case TypeTime:
		t, err := parseRecordTime(v, f.Layout, zone)
		if err != nil {
			return nil, time.Time{}, err
		}
		return t.UTC().Format(time.RFC3339Nano), t, nil
	case TypeDate:
		s, ok := v.(string)
		layout := f.Layout
		if layout == "" {
			layout = time.DateOnly
		}
		if ok {
			if t, err := time.ParseInLocation(layout, strings.TrimSpace(s), zone); err == nil {
				return t.Format(time.DateOnly), time.Time{}, nil
			}
		}
		return nil, time.Time{}, fmt.Errorf("%s is not a date in the layout %s", describe(v), layout)
	}
	return nil, time.Time{}, fmt.Errorf("%s is not a %s", describe(v), f.Type)
}

func parseRecordTime(v any, layout string, zone *time.Location) (time.Time, error) {
	switch layout {
	case "unix", "unix_ms":
		var s string
		switch x := v.(type) {
		case json.Number:
			s = x.String()
		case string:
			s = strings.TrimSpace(x)
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s is not a %s timestamp (whole number)", describe(v), layout)
		}
		if layout == "unix" {
			return time.Unix(n, 0), nil
		}
		return time.UnixMilli(n), nil
	}
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("%s is not a time string", describe(v))
	}
	s = strings.TrimSpace(s)
	if layout != "" {
		t, err := time.ParseInLocation(layout, s, zone)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q does not match the layout %q", s, layout)
		}
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, l := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.ParseInLocation(l, s, zone); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time or YYYY-MM-DD hh:mm:ss: set the field's layout", s)
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprint(v)
}
