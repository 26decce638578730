package proto_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/punchflow/punchflow/proto"
)

func TestSchemaKinds(t *testing.T) {
	want := []string{
		proto.KindAttendanceEvent, proto.KindCleanRecord, proto.KindDeadLetter,
		proto.KindHeartbeat, proto.KindRawPunch, proto.KindRawRecord,
	}
	got := proto.SchemaKinds()
	if !slices.Equal(got, want) {
		t.Errorf("SchemaKinds() = %v, want %v", got, want)
	}
	got[0] = "mutated"
	if proto.SchemaKinds()[0] != want[0] {
		t.Errorf("SchemaKinds returns a slice the caller can change the package's kinds through")
	}
	files, err := filepath.Glob(filepath.Join("schema", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fromFiles []string
	for _, f := range files {
		fromFiles = append(fromFiles, strings.TrimSuffix(filepath.Base(f), ".schema.json"))
	}
	if !slices.Equal(fromFiles, want) {
		t.Errorf("schema/ holds %v, want one file per kind %v", fromFiles, want)
	}
}

func TestSchemaUnknownKind(t *testing.T) {
	for _, kind := range []string{"", "raw-punch", "RAW_PUNCH", "../schema/raw_punch", "raw_punch.schema.json", "*"} {
		t.Run(kind, func(t *testing.T) {
			b, err := proto.Schema(kind)
			if !errors.Is(err, fs.ErrNotExist) || b != nil {
				t.Errorf("Schema(%q) = %d bytes, %v; want fs.ErrNotExist", kind, len(b), err)
			}
		})
	}
}

// TestSchemaFiles checks the conventions every schema keeps: draft 2020-12,
// its $id, a title and a description, open to new properties (top level and
// nested), a description for every property, and a required list that names
// defined properties and includes schema_version.
func TestSchemaFiles(t *testing.T) {
	for _, kind := range proto.SchemaKinds() {
		t.Run(kind, func(t *testing.T) {
			b, err := proto.Schema(kind)
			if err != nil {
				t.Fatal(err)
			}
			onDisk, err := os.ReadFile(filepath.Join("schema", kind+".schema.json"))
			if err != nil || string(onDisk) != string(b) {
				t.Errorf("embedded schema differs from schema/%s.schema.json (%v)", kind, err)
			}
			b[0] = 'X'
			if again, _ := proto.Schema(kind); again[0] == 'X' {
				t.Errorf("Schema returns bytes the caller can change the embedded schema through")
			}
			var doc map[string]any
			if err := json.Unmarshal(onDisk, &doc); err != nil {
				t.Fatal(err)
			}
			for key, want := range map[string]string{
				"$schema": "https://json-schema.org/draft/2020-12/schema",
				"$id":     schemaURL(kind),
				"type":    "object",
			} {
				if doc[key] != want {
					t.Errorf("%s = %v, want %q", key, doc[key], want)
				}
			}
			for _, key := range []string{"title", "description"} {
				if s, _ := doc[key].(string); s == "" {
					t.Errorf("no %s", key)
				}
			}
			checkObjectSchema(t, "", doc)
			if defs, ok := doc["$defs"].(map[string]any); ok {
				for name, def := range defs {
					checkObjectSchema(t, "$defs/"+name, def.(map[string]any))
				}
			}
			required, _ := doc["required"].([]any)
			if !slices.Contains(required, any("schema_version")) {
				t.Errorf("required %v lacks schema_version", required)
			}
		})
	}
}

func checkObjectSchema(t *testing.T, path string, obj map[string]any) {
	t.Helper()
	if obj["additionalProperties"] != true {
		t.Errorf("%s: additionalProperties = %v, want true (minor versions add fields)", path, obj["additionalProperties"])
	}
	props, _ := obj["properties"].(map[string]any)
	if len(props) == 0 {
		t.Errorf("%s: no properties", path)
	}
	for name, p := range props {
		if d, _ := p.(map[string]any)["description"].(string); d == "" {
			t.Errorf("%s/properties/%s: no description", path, name)
		}
	}
	required, _ := obj["required"].([]any)
	for _, r := range required {
		if _, ok := props[r.(string)]; !ok {
			t.Errorf("%s: required %q is not a property", path, r)
		}
	}
}
