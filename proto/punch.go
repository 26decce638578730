package proto

import "time"

// RawPunch is one attendance punch as a device (or a CSV export of one)
// reported it. It keeps the device's own fields; interpretation (in/out,
// shift, work date, time zone) belongs to the transformer.
//
// Subject: RawPunchSubject(Site, DeviceSerial). Id: PunchID.
type RawPunch struct {
	ID            string `json:"id"`
	SchemaVersion string `json:"schema_version"`
	// Source names the collector input that read the punch, for example
	// "csv:hq-drop" or "zk:CQUJ190460155".
	Source string `json:"source"`
	// SourceKind is how it was read: "zk_tcp", "zk_udp", "adms" or "csv".
	SourceKind   string `json:"source_kind"`
	Site         string `json:"site"`
	DeviceSerial string `json:"device_serial"`
	// UserID is the device's user id: a string, never assumed numeric.
	UserID string `json:"user_id"`
	// UID is the device's internal user slot, when the device reports one.
	UID int `json:"uid,omitempty"`
	// DeviceTime is the device's local wall clock, zone-less, in LocalTimeLayout.
	DeviceTime string `json:"device_time"`
	// DeviceTimeZone is the IANA zone the device is configured for, when known.
	DeviceTimeZone string `json:"device_time_zone,omitempty"`
	VerifyMode     int    `json:"verify_mode"`
	// State is the punch state code as the device reported it (0 check-in,
	// 1 check-out, ... 255 undefined); mapping it is the transformer's job.
	State       int       `json:"state"`
	WorkCode    int       `json:"work_code,omitempty"`
	CollectedAt time.Time `json:"collected_at"`
	RunID       string    `json:"run_id"`
	// ClockOffsetMS is the device clock minus the collector clock (both as
	// wall clocks in DeviceTimeZone), in milliseconds, measured in the session
	// that read the punch (since schema 1.1). Nil when it was not measured
	// (CSV files); zero means the clocks agreed. A device clock reads to the
	// second, so the offset is accurate to about ±1 s.
	ClockOffsetMS *int64 `json:"clock_offset_ms,omitempty"`
}

// NewRawPunch fills ID and SchemaVersion from the identity fields of p.
func NewRawPunch(p RawPunch) RawPunch {
	p.SchemaVersion = SchemaVersion
	p.ID = PunchID(p.DeviceSerial, p.UserID, p.DeviceTime, p.State)
	return p
}

// Validate reports the first field that breaks the contract.
func (p *RawPunch) Validate() error {
	const m = KindRawPunch
	switch {
	case p.ID == "":
		return missing(m, "id")
	case p.Source == "":
		return missing(m, "source")
	case p.Site == "":
		return missing(m, "site")
	case p.DeviceSerial == "":
		return missing(m, "device_serial")
	case p.UserID == "":
		return missing(m, "user_id")
	case p.DeviceTime == "":
		return missing(m, "device_time")
	case p.RunID == "":
		return missing(m, "run_id")
	}
	if _, err := ParseLocalTime(p.DeviceTime); err != nil {
		return &FieldError{Message: m, Field: "device_time", Problem: "must be local time as YYYY-MM-DDThh:mm:ss, got " + quote(p.DeviceTime)}
	}
	if p.State < 0 || p.State > 255 {
		return &FieldError{Message: m, Field: "state", Problem: "must be a punch state code from 0 to 255"}
	}
	if p.VerifyMode < 0 || p.VerifyMode > 255 {
		return &FieldError{Message: m, Field: "verify_mode", Problem: "must be a verify mode from 0 to 255"}
	}
	return checkVersion(m, p.SchemaVersion)
}
