package proto

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Header names. Headers are case-sensitive in NATS; use these constants.
const (
	// HeaderMsgID is JetStream's de-duplication header; punchflow sets it to
	// the message id.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderCorrelationID ties together everything one collection run caused,
	// across services and into the dead-letter stream.
	HeaderCorrelationID = "Punchflow-Correlation-Id"
	// HeaderTraceparent is the W3C trace context.
	HeaderTraceparent = "traceparent"
	// HeaderSchemaVersion carries SchemaVersion.
	HeaderSchemaVersion = "Punchflow-Schema-Version"
	// HeaderType carries the message kind (KindRawPunch, ...).
	HeaderType = "Punchflow-Type"
)

// NewTraceparent returns a new W3C traceparent value with a random trace id
// and span id, sampled.
func NewTraceparent() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}

// ChildTraceparent returns a traceparent in the same trace as parent with a
// new span id and the parent's trace flags. A malformed or empty parent (not
// version 00 with lowercase hex ids that are not all zeros and two hex digits
// of flags, as W3C Trace Context requires) starts a new trace.
func ChildTraceparent(parent string) string {
	// version(2) - trace id(32) - span id(16) - flags(2)
	const size = 2 + 1 + 32 + 1 + 16 + 1 + 2
	if len(parent) != size || parent[:3] != "00-" || parent[35] != '-' || parent[52] != '-' ||
		!traceHex(parent[3:35], 32) || !traceHex(parent[36:52], 16) || !lowerHex(parent[53:], 2) {
		return NewTraceparent()
	}
	var span [8]byte
	_, _ = rand.Read(span[:])
	var out [size]byte
	copy(out[:36], parent[:36])
	hex.Encode(out[36:52], span[:])
	copy(out[52:], parent[52:])
	return string(out[:])
}

// traceHex reports whether s is a valid trace or span id: n lowercase hex
// digits, not all zeros.
func traceHex(s string, n int) bool {
	return lowerHex(s, n) && strings.Trim(s, "0") != ""
}

func lowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// NewCorrelationID returns a random 16-byte hex id for a collection run or a
// request.
func NewCorrelationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
