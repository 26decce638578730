package proto

// SchemaVersion is the version stamped on every message this module encodes,
// as "MAJOR.MINOR". Minor versions only add optional fields:
//
//   - 1.1 added RawPunch.ClockOffsetMS (clock_offset_ms).
//   - 1.1 added AttendanceEvent's department, roster_version, shift,
//     shift_start, shift_end, rounded_at, late_minutes,
//     early_leave_minutes, overtime_minutes and clock_offset_ms, and
//     AttendanceID.
//   - 1.2 added AttendanceEvent.Reprocessed (reprocessed) and
//     DeadLetter.Sink (sink, header Punchflow-Dlq-Sink).
const SchemaVersion = "1.2"

// SchemaMajor is the major version this decoder understands.
const SchemaMajor = 1
