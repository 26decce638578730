package proto

import (
	"bytes"
	"time"

	"github.com/segmentio/encoding/json"
)

// RawRecord is one business record (an order, a ticket, a payment, a row of a
// department database) exactly as its source returned it.
//
// Subject: RawRecordSubject(Source). Id: RecordID.
type RawRecord struct {
	ID            string `json:"id"`
	SchemaVersion string `json:"schema_version"`
	Source        string `json:"source"`
	// NaturalKey is the record's key in its source system.
	NaturalKey string `json:"natural_key"`
	// ObservedAt is the record's own timestamp, when its source has one.
	ObservedAt  *time.Time `json:"observed_at,omitempty"`
	CollectedAt time.Time  `json:"collected_at"`
	RunID       string     `json:"run_id"`
	// Payload is the record as its source returned it: one JSON value, not
	// null.
	Payload json.RawMessage `json:"payload"`
}

// NewRawRecord fills ID and SchemaVersion from the identity fields of r. It
// first trims the white space around Payload (an HTTP body often ends with a
// newline), which Encode would drop anyway, so that the id is computed over
// the payload bytes that travel.
func NewRawRecord(r RawRecord) RawRecord {
	r.SchemaVersion = SchemaVersion
	r.Payload = bytes.Trim(r.Payload, jsonSpace)
	r.ID = RecordID(r.Source, r.NaturalKey, r.Payload)
	return r
}

// jsonSpace is the white space JSON allows between tokens.
const jsonSpace = " \t\r\n"

// noJSON reports whether a raw JSON field is absent or null.
func noJSON(b json.RawMessage) bool {
	b = bytes.Trim(b, jsonSpace)
	return len(b) == 0 || string(b) == "null"
}

// Validate reports the first field that breaks the contract.
func (r *RawRecord) Validate() error {
	const m = KindRawRecord
	switch {
	case r.ID == "":
		return missing(m, "id")
	case r.Source == "":
		return missing(m, "source")
	case r.NaturalKey == "":
		return missing(m, "natural_key")
	case r.RunID == "":
		return missing(m, "run_id")
	case noJSON(r.Payload):
		return missing(m, "payload")
	}
	return checkVersion(m, r.SchemaVersion)
}
