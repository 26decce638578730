package proto

// SchemaVersion is the version stamped on every message this module encodes,
// as "MAJOR.MINOR". Minor versions only add optional fields.
const SchemaVersion = "1.0"

// SchemaMajor is the major version this decoder understands.
const SchemaMajor = 1
