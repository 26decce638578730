package proto

import "time"

// Heartbeat kinds.
const (
	HeartbeatDevice = "device" // a ZK or ADMS device session
	HeartbeatSource = "source" // a file, API or SQL source run
)

// Error classes a heartbeat reports. The empty class means success.
const (
	ErrorClassTimeout      = "timeout"
	ErrorClassRefused      = "refused"
	ErrorClassUnauthorized = "unauthorized"
	ErrorClassProtocol     = "protocol"
	ErrorClassIO           = "io"
	ErrorClassPublish      = "publish"
	ErrorClassInternal     = "internal"
)

// Heartbeat is published after every device session or source run: whether
// the source was reachable, how it behaved and what it held.
//
// Subject: HealthDeviceSubject(Source) or HealthSourceSubject(Source).
// Id: HeartbeatID(Source, RunID).
type Heartbeat struct {
	ID            string `json:"id"`
	SchemaVersion string `json:"schema_version"`
	// Source is the device serial (Kind "device") or the source name (Kind "source").
	Source string `json:"source"`
	Kind   string `json:"kind"`
	Site   string `json:"site,omitempty"`
	// Address is where the collector reached the source (host:port, folder, URL).
	Address    string    `json:"address,omitempty"`
	ObservedAt time.Time `json:"observed_at"`
	RunID      string    `json:"run_id"`
	Reachable  bool      `json:"reachable"`
	// LatencyMS is the round trip of the session's first exchange.
	LatencyMS float64 `json:"latency_ms"`
	// DurationMS is how long the whole session or run took.
	DurationMS float64 `json:"duration_ms"`
	ErrorClass string  `json:"error_class,omitempty"`
	Error      string  `json:"error,omitempty"`
	Firmware   string  `json:"firmware,omitempty"`
	Platform   string  `json:"platform,omitempty"`
	DeviceName string  `json:"device_name,omitempty"`
	Users      int     `json:"users,omitempty"`
	Records    int     `json:"records,omitempty"`
	// RecordCapacity is how many attendance records the device can hold.
	RecordCapacity int `json:"record_capacity,omitempty"`
	// CapacityUsed is Records / RecordCapacity, from 0 to 1.
	CapacityUsed float64 `json:"capacity_used,omitempty"`
	// ClockOffsetMS is device clock minus collector clock.
	ClockOffsetMS    int64 `json:"clock_offset_ms,omitempty"`
	RecordsPublished int   `json:"records_published"`
	RecordsRejected  int   `json:"records_rejected"`
}

// NewHeartbeat fills ID and SchemaVersion from the identity fields of h.
func NewHeartbeat(h Heartbeat) Heartbeat {
	h.SchemaVersion = SchemaVersion
	h.ID = HeartbeatID(h.Source, h.RunID)
	return h
}

// Subject is the subject h is published on.
func (h *Heartbeat) Subject() string {
	if h.Kind == HeartbeatDevice {
		return HealthDeviceSubject(h.Source)
	}
	return HealthSourceSubject(h.Source)
}

// Validate reports the first field that breaks the contract.
func (h *Heartbeat) Validate() error {
	const m = KindHeartbeat
	switch {
	case h.ID == "":
		return missing(m, "id")
	case h.Source == "":
		return missing(m, "source")
	case h.RunID == "":
		return missing(m, "run_id")
	case h.ObservedAt.IsZero():
		return missing(m, "observed_at")
	}
	if h.Kind != HeartbeatDevice && h.Kind != HeartbeatSource {
		return &FieldError{Message: m, Field: "kind", Problem: `must be "device" or "source", got ` + quote(h.Kind)}
	}
	return checkVersion(m, h.SchemaVersion)
}
