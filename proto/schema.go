package proto

import (
	"embed"
	"fmt"
	"io/fs"
	"slices"
)

// schemaFiles holds one JSON Schema (draft 2020-12) per message kind, named
// schema/<kind>.schema.json.
//
//go:embed schema/*.json
var schemaFiles embed.FS

// schemaKinds are the kinds that have a schema, sorted.
var schemaKinds = []string{
	KindAttendanceEvent,
	KindCleanRecord,
	KindDeadLetter,
	KindHeartbeat,
	KindRawPunch,
	KindRawRecord,
}

// Schema returns the JSON Schema (draft 2020-12) of the message kind, one of
// the Kind* constants, as a fresh copy the caller may modify. Its $id is
// https://punchflow.dev/schema/v1/<kind>.schema.json. An unknown kind is an
// error that wraps fs.ErrNotExist.
func Schema(kind string) ([]byte, error) {
	if !slices.Contains(schemaKinds, kind) {
		return nil, fmt.Errorf("schema for message kind %q: %w", kind, fs.ErrNotExist)
	}
	b, err := schemaFiles.ReadFile("schema/" + kind + ".schema.json")
	if err != nil {
		return nil, fmt.Errorf("schema for message kind %q: %w", kind, err)
	}
	return b, nil
}

// SchemaKinds returns the message kinds that have a schema, sorted, in a new
// slice.
func SchemaKinds() []string { return slices.Clone(schemaKinds) }
