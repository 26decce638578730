package proto

import (
	"time"

	"github.com/segmentio/encoding/json"
)

// Directions an attendance event can have after the punch-state mapping.
const (
	DirectionIn       = "in"
	DirectionOut      = "out"
	DirectionBreakOut = "break_out"
	DirectionBreakIn  = "break_in"
	DirectionUnknown  = "unknown"
)

// Lineage records where a clean record came from, for audits.
type Lineage struct {
	RawID         string `json:"raw_id"`
	RawSubject    string `json:"raw_subject"`
	RawStream     string `json:"raw_stream"`
	RawSequence   uint64 `json:"raw_sequence"`
	RunID         string `json:"run_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
}

// AttendanceEvent is a punch interpreted under the payroll rules: a UTC
// instant, a direction and a work date, stamped with the rules version.
//
// Subject: CleanAttendanceSubject(Site). Id: AttendanceID(raw id,
// RulesVersion, RosterVersion), which is CleanID(raw id, RulesVersion) when
// no roster entry was applied.
type AttendanceEvent struct {
	ID            string `json:"id"`
	SchemaVersion string `json:"schema_version"`
	RulesVersion  string `json:"rules_version"`
	Site          string `json:"site"`
	DeviceSerial  string `json:"device_serial"`
	UserID        string `json:"user_id"`
	// PersonID is the roster's person for UserID, when the roster knows it.
	PersonID string `json:"person_id,omitempty"`
	// OccurredAt is the punch instant in UTC.
	OccurredAt time.Time `json:"occurred_at"`
	// DeviceTime (in LocalTimeLayout) and TimeZone (an IANA zone name) are
	// the inputs OccurredAt was derived from; both are required.
	DeviceTime string `json:"device_time"`
	TimeZone   string `json:"time_zone"`
	Direction  string `json:"direction"`
	State      int    `json:"state"`
	VerifyMode int    `json:"verify_mode"`
	// WorkDate is the payroll day the punch belongs to, YYYY-MM-DD.
	WorkDate string `json:"work_date"`
	// Flags are findings that did not stop the event, for example
	// "unknown_user", "dst_gap", "dst_overlap", "unknown_state".
	Flags       []string  `json:"flags,omitempty"`
	Lineage     Lineage   `json:"lineage"`
	ProcessedAt time.Time `json:"processed_at"`

	// The fields below were added in schema 1.1; all are optional.

	// Department is the roster's department for the person.
	Department string `json:"department,omitempty"`
	// RosterVersion is a fingerprint of the roster entry applied (person,
	// department, shift); empty when no roster entry was found or none is
	// configured. It is part of the id (AttendanceID), so a roster fix
	// followed by a replay yields new events.
	RosterVersion string `json:"roster_version,omitempty"`
	// Shift names the shift the punch was assigned to; ShiftStart and
	// ShiftEnd are the UTC instants of that shift's occurrence, present when
	// the punch fell inside its valid-punch window.
	Shift      string     `json:"shift,omitempty"`
	ShiftStart *time.Time `json:"shift_start,omitempty"`
	ShiftEnd   *time.Time `json:"shift_end,omitempty"`
	// RoundedAt is OccurredAt after the rules' rounding, present when a
	// rounding rule applied; late, early-leave and overtime minutes are
	// computed from it.
	RoundedAt *time.Time `json:"rounded_at,omitempty"`
	// LateMinutes (an in after the shift start plus grace, or a break_in
	// after the break's end plus grace), EarlyLeaveMinutes (an out before the
	// shift end minus grace) and OvertimeMinutes (an out after the shift end)
	// are whole minutes relative to the assigned shift; pairing punches is
	// the daily summary's job.
	LateMinutes       int `json:"late_minutes,omitempty"`
	EarlyLeaveMinutes int `json:"early_leave_minutes,omitempty"`
	OvertimeMinutes   int `json:"overtime_minutes,omitempty"`
	// ClockOffsetMS is the device clock offset (device minus true time, in
	// milliseconds) that was subtracted from the device time to obtain
	// OccurredAt; present only when a correction was applied (flag
	// "clock_corrected").
	ClockOffsetMS int64 `json:"clock_offset_ms,omitempty"`

	// The field below was added in schema 1.2; it is optional.

	// Reprocessed is true when the transformer made the event from a raw
	// punch it may have processed before: a redelivery of the raw message,
	// or a replay. An earlier version of the same punch (the same
	// lineage.raw_id under another rules or roster version, so another id)
	// may be loaded already, possibly on another work date; a consumer that
	// keeps an aggregate per punch or per day looks it up then. Events of
	// punches processed for the first time leave it false.
	Reprocessed bool `json:"reprocessed,omitempty"`
}

// Validate reports the first field that breaks the contract.
func (e *AttendanceEvent) Validate() error {
	const m = KindAttendanceEvent
	switch {
	case e.ID == "":
		return missing(m, "id")
	case e.RulesVersion == "":
		return missing(m, "rules_version")
	case e.Site == "":
		return missing(m, "site")
	case e.DeviceSerial == "":
		return missing(m, "device_serial")
	case e.UserID == "":
		return missing(m, "user_id")
	case e.OccurredAt.IsZero():
		return missing(m, "occurred_at")
	case e.DeviceTime == "":
		return missing(m, "device_time")
	case e.TimeZone == "":
		return missing(m, "time_zone")
	case e.WorkDate == "":
		return missing(m, "work_date")
	case e.Lineage.RawID == "":
		return missing(m, "lineage.raw_id")
	}
	if _, err := ParseLocalTime(e.DeviceTime); err != nil {
		return &FieldError{Message: m, Field: "device_time", Problem: "must be local time as YYYY-MM-DDThh:mm:ss, got " + quote(e.DeviceTime)}
	}
	if _, err := parseExact(workDateLayout, e.WorkDate); err != nil {
		return &FieldError{Message: m, Field: "work_date", Problem: "must be a date as YYYY-MM-DD, got " + quote(e.WorkDate)}
	}
	switch e.Direction {
	case DirectionIn, DirectionOut, DirectionBreakOut, DirectionBreakIn, DirectionUnknown:
	default:
		return &FieldError{Message: m, Field: "direction", Problem: "must be in, out, break_out, break_in or unknown, got " + quote(e.Direction)}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"late_minutes", e.LateMinutes}, {"early_leave_minutes", e.EarlyLeaveMinutes}, {"overtime_minutes", e.OvertimeMinutes}} {
		if f.v < 0 {
			return &FieldError{Message: m, Field: f.name, Problem: "must not be negative"}
		}
	}
	return checkVersion(m, e.SchemaVersion)
}

// The types a rules file gives the fields of a clean record
// (records.<source>.fields.<name>.type): the transformer maps a payload's
// values to them, and the loader's typed tables take a column of each.
const (
	FieldString = "string" // a JSON string
	FieldInt    = "int"    // a JSON number without a fraction, within 64 bits
	FieldNumber = "number" // a JSON number
	FieldBool   = "bool"   // true or false
	FieldTime   = "time"   // an RFC 3339 string
	FieldDate   = "date"   // a YYYY-MM-DD string
)

// CleanRecord is a business record mapped to typed fields under the rules.
//
// Subject: CleanRecordSubject(Source). Id: CleanID(raw id, RulesVersion).
type CleanRecord struct {
	ID            string     `json:"id"`
	SchemaVersion string     `json:"schema_version"`
	RulesVersion  string     `json:"rules_version"`
	Source        string     `json:"source"`
	NaturalKey    string     `json:"natural_key"`
	OccurredAt    *time.Time `json:"occurred_at,omitempty"`
	// Fields are the mapped, typed fields (see the Field* types: strings,
	// numbers, booleans, RFC 3339 times, YYYY-MM-DD dates).
	Fields map[string]any `json:"fields,omitempty"`
	// Payload is the raw record's payload, unchanged.
	Payload     json.RawMessage `json:"payload"`
	Lineage     Lineage         `json:"lineage"`
	ProcessedAt time.Time       `json:"processed_at"`
}

// Validate reports the first field that breaks the contract.
func (r *CleanRecord) Validate() error {
	const m = KindCleanRecord
	switch {
	case r.ID == "":
		return missing(m, "id")
	case r.RulesVersion == "":
		return missing(m, "rules_version")
	case r.Source == "":
		return missing(m, "source")
	case r.NaturalKey == "":
		return missing(m, "natural_key")
	case noJSON(r.Payload):
		return missing(m, "payload")
	case r.Lineage.RawID == "":
		return missing(m, "lineage.raw_id")
	}
	return checkVersion(m, r.SchemaVersion)
}
