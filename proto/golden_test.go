package proto_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/proto"
)

// TestGolden holds every frozen golden file against the current decoder and
// schema: it decodes, it validates, its id is the one the id function
// computes, and encoding the decoded message gives a document that validates
// and decodes to the same message.
func TestGolden(t *testing.T) {
	schemas := compileSchemas(t)
	for _, c := range codecs() {
		files := testFiles(t, "golden", c.kind)
		if len(files) < 2 {
			t.Errorf("%s: %d golden files, want at least a full and a minimal one", c.kind, len(files))
		}
		for _, file := range files {
			t.Run(c.kind+"/"+filepath.Base(file), func(t *testing.T) {
				data := readFile(t, file)
				if err := validateJSON(schemas[c.kind], data); err != nil {
					t.Errorf("golden file does not validate against the schema: %v", err)
				}
				m, err := c.decode(data)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if got, want, ok := c.ids(m); ok && got != want {
					t.Errorf("id = %s, the id function computes %s", got, want)
				}
				b, _ := encodeDecode(t, c, m)
				if err := validateJSON(schemas[c.kind], b); err != nil {
					t.Errorf("re-encoded message does not validate against the schema: %v\n%s", err, b)
				}
			})
		}
	}
}

// TestGoldenCoverage checks that the golden files of a kind, together, use
// every property its schema defines (so a full example really is full), and
// that a minimal example has exactly the required ones.
func TestGoldenCoverage(t *testing.T) {
	for _, kind := range proto.SchemaKinds() {
		t.Run(kind, func(t *testing.T) {
			props, required := schemaProperties(t, kind)
			seen := map[string]bool{}
			minimal := false
			for _, file := range testFiles(t, "golden", kind) {
				var doc map[string]any
				decodeInto(t, readFile(t, file), &doc)
				keys := make([]string, 0, len(doc))
				for k := range doc {
					seen[k] = true
					keys = append(keys, k)
				}
				if strings.Contains(filepath.Base(file), "minimal") {
					minimal = true
					slices.Sort(keys)
					if !slices.Equal(keys, required) {
						t.Errorf("%s has %v, want exactly the required properties %v", file, keys, required)
					}
				}
			}
			if !minimal {
				t.Errorf("no *minimal*.json golden file")
			}
			for _, p := range props {
				if !seen[p] {
					t.Errorf("no golden file has property %q", p)
				}
			}
		})
	}
}

// TestInvalid checks that each invalid example is refused by the decoder,
// with the right class of error, and by the schema.
func TestInvalid(t *testing.T) {
	tests := []struct {
		kind, file string
		want       error
	}{
		{proto.KindRawPunch, "missing-user-id", proto.ErrInvalid},
		{proto.KindRawPunch, "empty-site", proto.ErrInvalid},
		{proto.KindRawPunch, "bad-device-time-zoned", proto.ErrInvalid},
		{proto.KindRawPunch, "bad-device-time-space", proto.ErrInvalid},
		{proto.KindRawPunch, "bad-device-time-fraction", proto.ErrInvalid},
		{proto.KindRawPunch, "bad-device-time-feb-30", proto.ErrInvalid},
		{proto.KindRawPunch, "bad-state-300", proto.ErrInvalid},
		{proto.KindRawPunch, "bad-user-id-number", proto.ErrInvalid},
		{proto.KindRawPunch, "bad-schema-version", proto.ErrInvalid},
		{proto.KindRawPunch, "missing-schema-version", proto.ErrInvalid},
		{proto.KindRawPunch, "major-version-2", proto.ErrUnsupportedVersion},
		{proto.KindRawRecord, "missing-payload", proto.ErrInvalid},
		{proto.KindRawRecord, "null-payload", proto.ErrInvalid},
		{proto.KindRawRecord, "missing-natural-key", proto.ErrInvalid},
		{proto.KindRawRecord, "major-version-2", proto.ErrUnsupportedVersion},
		{proto.KindHeartbeat, "missing-observed-at", proto.ErrInvalid},
		{proto.KindHeartbeat, "zero-observed-at", proto.ErrInvalid},
		{proto.KindHeartbeat, "bad-kind", proto.ErrInvalid},
		{proto.KindHeartbeat, "missing-run-id", proto.ErrInvalid},
		{proto.KindHeartbeat, "major-version-2", proto.ErrUnsupportedVersion},
		{proto.KindAttendanceEvent, "missing-lineage-raw-id", proto.ErrInvalid},
		{proto.KindAttendanceEvent, "missing-time-zone", proto.ErrInvalid},
		{proto.KindAttendanceEvent, "bad-direction-uppercase", proto.ErrInvalid},
		{proto.KindAttendanceEvent, "bad-direction-check-in", proto.ErrInvalid},
		{proto.KindAttendanceEvent, "missing-direction", proto.ErrInvalid},
		{proto.KindAttendanceEvent, "bad-device-time", proto.ErrInvalid},
		{proto.KindAttendanceEvent, "bad-work-date", proto.ErrInvalid},
		{proto.KindAttendanceEvent, "bad-work-date-feb-29", proto.ErrInvalid},
		{proto.KindAttendanceEvent, "bad-occurred-at-no-zone", proto.ErrInvalid},
		{proto.KindAttendanceEvent, "negative-late-minutes", proto.ErrInvalid},
		{proto.KindAttendanceEvent, "major-version-2", proto.ErrUnsupportedVersion},
		{proto.KindCleanRecord, "missing-rules-version", proto.ErrInvalid},
		{proto.KindCleanRecord, "missing-lineage", proto.ErrInvalid},
		{proto.KindCleanRecord, "null-payload", proto.ErrInvalid},
		{proto.KindCleanRecord, "major-version-2", proto.ErrUnsupportedVersion},
		{proto.KindDeadLetter, "missing-reason-code", proto.ErrInvalid},
		{proto.KindDeadLetter, "bad-stage", proto.ErrInvalid},
		{proto.KindDeadLetter, "negative-source-line", proto.ErrInvalid},
		{proto.KindDeadLetter, "negative-sequence", proto.ErrInvalid},
		{proto.KindDeadLetter, "major-version-2", proto.ErrUnsupportedVersion},
	}
	schemas := compileSchemas(t)
	codecOf := map[string]codec{}
	for _, c := range codecs() {
		codecOf[c.kind] = c
	}
	listed := map[string]bool{}
	for _, tt := range tests {
		path := filepath.Join("testdata", "invalid", tt.kind, tt.file+".json")
		listed[path] = true
		t.Run(tt.kind+"/"+tt.file, func(t *testing.T) {
			data := readFile(t, path)
			_, err := codecOf[tt.kind].decode(data)
			if !errors.Is(err, tt.want) {
				t.Errorf("decode error = %v, want one that wraps %q", err, tt.want)
			}
			other := proto.ErrInvalid
			if tt.want == proto.ErrInvalid {
				other = proto.ErrUnsupportedVersion
			}
			if errors.Is(err, other) {
				t.Errorf("decode error = %v, wraps %q as well", err, other)
			}
			if err := validateJSON(schemas[tt.kind], data); err == nil {
				t.Errorf("the schema accepts it")
			}
		})
	}
	for _, c := range codecs() {
		for _, f := range testFiles(t, "invalid", c.kind) {
			if !listed[f] {
				t.Errorf("%s is not in the table of TestInvalid", f)
			}
		}
	}
}

// TestCompat is the old-decodes-new test: a message of a future minor version
// with fields this decoder does not know (at the top level and nested)
// decodes to the same message as the v1.0 golden it extends, and a message of
// a future major version is refused as such, whatever its fields look like.
func TestCompat(t *testing.T) {
	schemas := compileSchemas(t)
	ignoreVersion := cmp.FilterPath(func(p cmp.Path) bool {
		f, ok := p.Last().(cmp.StructField)
		return ok && f.Name() == "SchemaVersion"
	}, cmp.Ignore())
	for _, c := range codecs() {
		t.Run(c.kind+"/v1.7-unknown-fields", func(t *testing.T) {
			data := readFile(t, filepath.Join("testdata", "compat", c.kind, "v1.7-unknown-fields.json"))
			if err := validateJSON(schemas[c.kind], data); err != nil {
				t.Errorf("the v1 schema refuses a 1.7 message: %v", err)
			}
			got, err := c.decode(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			want, err := c.decode(readFile(t, filepath.Join("testdata", "golden", c.kind, "v1.0-full.json")))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, ignoreVersion, roundTrip); diff != "" {
				t.Errorf("known fields of the 1.7 message differ from the 1.0 golden (-want +got):\n%s", diff)
			}
			b, _ := encodeDecode(t, c, got)
			if !bytes.Contains(b, []byte(`"schema_version":"1.7"`)) {
				t.Errorf("re-encoding lost the message's version:\n%s", b)
			}
			if err := validateJSON(schemas[c.kind], b); err != nil {
				t.Errorf("re-encoded message does not validate: %v", err)
			}
		})
		t.Run(c.kind+"/v2.0", func(t *testing.T) {
			data := readFile(t, filepath.Join("testdata", "compat", c.kind, "v2.0.json"))
			_, err := c.decode(data)
			if !errors.Is(err, proto.ErrUnsupportedVersion) || errors.Is(err, proto.ErrInvalid) {
				t.Errorf("decode error = %v, want ErrUnsupportedVersion only", err)
			}
			if err := validateJSON(schemas[c.kind], data); err == nil {
				t.Errorf("the v1 schema accepts a 2.0 message")
			}
		})
	}
}

// schemaProperties returns the sorted property names and required names of
// a kind's schema.
func schemaProperties(t *testing.T, kind string) (props, required []string) {
	t.Helper()
	b, err := proto.Schema(kind)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Properties map[string]any `json:"properties"`
		Required   []string       `json:"required"`
	}
	decodeInto(t, b, &doc)
	for p := range doc.Properties {
		props = append(props, p)
	}
	slices.Sort(props)
	required = slices.Sorted(slices.Values(doc.Required))
	return props, required
}

func decodeInto(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
