package proto

import "strings"

// Subject prefixes. Every stream captures one prefix with a trailing ">".
const (
	PrefixRaw    = "raw"
	PrefixClean  = "clean"
	PrefixHealth = "health"
	PrefixDLQ    = "dlq"
)

// DLQ stages name the service that gave up on a message.
const (
	StageCollect   = "collect"
	StageTransform = "transform"
	StageLoad      = "load"
	StageHealth    = "health"
)

// Token makes s safe to use as one subject token: every byte other than an
// ASCII letter, digit, '-' or '_' becomes '_' (so a two-byte UTF-8 letter
// becomes "__"), and an empty string becomes "_".
// Tokens route messages; they are not identities (ids are), so the rare
// collision of two names that differ only in punctuation is harmless.
func Token(s string) string {
	if s == "" {
		return "_"
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if !tokenByte(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := []byte(s)
	for i := range b {
		if !tokenByte(b[i]) {
			b[i] = '_'
		}
	}
	return string(b)
}

func tokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// RawPunchSubject is raw.punch.<site>.<device>.
func RawPunchSubject(site, device string) string {
	return PrefixRaw + ".punch." + Token(site) + "." + Token(device)
}

// RawRecordSubject is raw.record.<source>.
func RawRecordSubject(source string) string { return PrefixRaw + ".record." + Token(source) }

// CleanAttendanceSubject is clean.attendance.<site>.
func CleanAttendanceSubject(site string) string { return PrefixClean + ".attendance." + Token(site) }

// CleanRecordSubject is clean.record.<source>.
func CleanRecordSubject(source string) string { return PrefixClean + ".record." + Token(source) }

// HealthDeviceSubject is health.device.<device>.
func HealthDeviceSubject(device string) string { return PrefixHealth + ".device." + Token(device) }

// HealthSourceSubject is health.source.<source>.
func HealthSourceSubject(source string) string { return PrefixHealth + ".source." + Token(source) }

// DLQSubject is dlq.<stage>.<original subject>, so that a dead letter can be
// found by the subject it came from. Input that never had a subject (a bad CSV
// line) goes to dlq.<stage>._ rather than to the invalid subject "dlq.<stage>.".
func DLQSubject(stage, original string) string {
	if original == "" {
		original = "_"
	}
	return PrefixDLQ + "." + Token(stage) + "." + original
}

// SubjectKind tells which message type travels on a subject: "raw_punch",
// "raw_record", "attendance_event", "clean_record", "heartbeat", or "" when
// the subject is none of punchflow's.
func SubjectKind(subject string) string {
	switch {
	case strings.HasPrefix(subject, PrefixRaw+".punch."):
		return KindRawPunch
	case strings.HasPrefix(subject, PrefixRaw+".record."):
		return KindRawRecord
	case strings.HasPrefix(subject, PrefixClean+".attendance."):
		return KindAttendanceEvent
	case strings.HasPrefix(subject, PrefixClean+".record."):
		return KindCleanRecord
	case strings.HasPrefix(subject, PrefixHealth+"."):
		return KindHeartbeat
	}
	return ""
}

// Message kinds, as carried in HeaderType and returned by SubjectKind.
const (
	KindRawPunch        = "raw_punch"
	KindRawRecord       = "raw_record"
	KindAttendanceEvent = "attendance_event"
	KindCleanRecord     = "clean_record"
	KindHeartbeat       = "heartbeat"
	KindDeadLetter      = "dead_letter"
)
