package proto

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/segmentio/encoding/json"
)

// Message is implemented by every message type of the contract.
type Message interface {
	Validate() error
}

// Encode renders a message as JSON. It does not validate; producers build
// messages with the New* constructors.
//
// Raw JSON fields (payloads) are written as they are, without HTML escaping
// or re-formatting, so that the bytes an id was computed over are the bytes a
// consumer decodes. Map keys are sorted, so the output is deterministic.
func Encode(m Message) ([]byte, error) { return AppendEncode(nil, m) }

// AppendEncode is Encode appending to dst, so that a caller can encode into a
// buffer of the right size (or reuse one once the bytes are no longer
// referenced). It returns dst unchanged with the error.
func AppendEncode(dst []byte, m Message) ([]byte, error) {
	b, err := json.Append(dst, m, json.SortMapKeys)
	if err != nil {
		return dst, fmt.Errorf("encode %T: %w", m, err)
	}
	return b, nil
}

// Decode parses data into a message of type T and validates it. Unknown fields
// are ignored (newer minor versions add them); field names match exactly, as
// in the JSON Schema. The error wraps ErrUnsupportedVersion when the message
// carries a newer major version (whatever else is wrong with it, since a newer
// major version may rename or drop fields), and ErrInvalid for malformed JSON,
// a broken field, or arrays and objects nested more than 128 levels deep.
func Decode[T any, PT interface {
	*T
	Message
}](data []byte) (T, error) {
	var v T
	err := parseJSON(data, PT(&v))
	if err != nil {
		err = fmt.Errorf("%w: %s is not valid JSON for the contract: %v", ErrInvalid, kindOf(&v), err)
	} else {
		err = PT(&v).Validate()
	}
	if err != nil && !errors.Is(err, ErrUnsupportedVersion) {
		if verr := newerMajor(kindOf(&v), data); verr != nil {
			return v, verr
		}
	}
	return v, err
}

// maxDepth is how deeply arrays and objects may nest in a message. The JSON
// decoder's cost grows with depth times size when it decodes into untyped
// values (CleanRecord.Fields): without a bound, one small message nested
// tens of thousands of levels deep holds a consumer for minutes, and its
// redeliveries hold it forever. Real records nest a few levels.
const maxDepth = 128

// parseJSON is json.Unmarshal with exact (case-sensitive) field names and a
// nesting limit of maxDepth.
func parseJSON(data []byte, v any) error {
	if err := checkDepth(data); err != nil {
		return err
	}
	rest, err := json.Parse(data, v, json.DontMatchCaseInsensitiveStructFields)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("unexpected data after the top-level value at offset %d", len(data)-len(rest))
	}
	return err
}

// checkDepth refuses data whose arrays and objects nest deeper than
// maxDepth. It does not validate the JSON otherwise.
func checkDepth(data []byte) error {
	// Nesting never goes deeper than the number of brackets that open
	// arrays and objects (some may be inside strings); counting them is a
	// fraction of the cost of the scan below, which most messages skip.
	if bytes.Count(data, []byte{'{'})+bytes.Count(data, []byte{'['}) <= maxDepth {
		return nil
	}
	depth, inString := 0, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString:
			if c == '\\' {
				i++ // the escaped byte cannot end the string (\u escapes continue in hex digits)
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > maxDepth {
				return fmt.Errorf("arrays and objects nest more than %d levels deep at offset %d", maxDepth, i)
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return nil
}

// newerMajor returns the ErrUnsupportedVersion error if data has a readable
// schema_version of a newer major version, and nil otherwise.
func newerMajor(kind string, data []byte) error {
	var h struct {
		SchemaVersion string `json:"schema_version"`
	}
	if parseJSON(data, &h) != nil {
		return nil
	}
	if err := checkVersion(kind, h.SchemaVersion); errors.Is(err, ErrUnsupportedVersion) {
		return err
	}
	return nil
}

func kindOf(v any) string {
	switch v.(type) {
	case *RawPunch:
		return KindRawPunch
	case *RawRecord:
		return KindRawRecord
	case *Heartbeat:
		return KindHeartbeat
	case *AttendanceEvent:
		return KindAttendanceEvent
	case *CleanRecord:
		return KindCleanRecord
	case *DeadLetter:
		return KindDeadLetter
	}
	return fmt.Sprintf("%T", v)
}

// DecodeRawPunch decodes and validates a RawPunch.
func DecodeRawPunch(data []byte) (RawPunch, error) { return Decode[RawPunch](data) }

// DecodeRawRecord decodes and validates a RawRecord.
func DecodeRawRecord(data []byte) (RawRecord, error) { return Decode[RawRecord](data) }

// DecodeHeartbeat decodes and validates a Heartbeat.
func DecodeHeartbeat(data []byte) (Heartbeat, error) { return Decode[Heartbeat](data) }

// DecodeAttendanceEvent decodes and validates an AttendanceEvent.
func DecodeAttendanceEvent(data []byte) (AttendanceEvent, error) {
	return Decode[AttendanceEvent](data)
}

// DecodeCleanRecord decodes and validates a CleanRecord.
func DecodeCleanRecord(data []byte) (CleanRecord, error) { return Decode[CleanRecord](data) }

// DecodeDeadLetter decodes and validates the JSON form of a DeadLetter (what
// tools print; on the wire a dead letter travels as headers, see
// DeadLetterFromHeader).
func DecodeDeadLetter(data []byte) (DeadLetter, error) { return Decode[DeadLetter](data) }

// checkVersion accepts "MAJOR.MINOR" (decimal digits) with
// 1 <= MAJOR <= SchemaMajor.
func checkVersion(msg, v string) error {
	if v == "" {
		return missing(msg, "schema_version")
	}
	majorStr, minorStr, ok := strings.Cut(v, ".")
	if !ok || !isDigits(majorStr) || !isDigits(minorStr) {
		return &FieldError{Message: msg, Field: "schema_version", Problem: "must be MAJOR.MINOR, got " + quote(v)}
	}
	major, err := strconv.Atoi(majorStr)
	if err != nil || major > SchemaMajor { // err: too many digits for an int, so newer
		return fmt.Errorf("%w: %s has schema %s, this decoder reads %d.x", ErrUnsupportedVersion, msg, v, SchemaMajor)
	}
	if major < 1 {
		return &FieldError{Message: msg, Field: "schema_version", Problem: "must have a major version of at least 1, got " + quote(v)}
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func quote(s string) string { return strconv.Quote(s) }
