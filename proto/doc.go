// Package proto is punchflow's wire contract: the message types that travel on
// the JetStream subjects, the subject builders, the header names, the schema
// version, the deterministic id functions and the JSON encoding.
//
// Consumers in other languages read the same contract from the JSON Schema
// files in schema/ (also embedded, see Schema) and the golden examples in
// testdata/golden/ (see testdata/README.md).
//
// Compatibility: within a major schema version every change is additive (new
// optional fields only). A decoder accepts any minor version of its own major
// version and ignores fields it does not know; it refuses a newer major version
// with ErrUnsupportedVersion.
package proto
