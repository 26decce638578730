package proto_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/punchflow/punchflow/proto"
)

// codec is what the table-driven tests need to know about one message kind.
type codec struct {
	kind string
	// decode is the kind's Decode* function; it returns a pointer to the value.
	decode func([]byte) (proto.Message, error)
	// ids returns the id a message carries and the id the id function
	// computes from its fields; ok is false for a kind without an id.
	ids func(proto.Message) (got, want string, ok bool)
}

func codecs() []codec {
	return []codec{
		{
			kind: proto.KindRawPunch,
			decode: func(b []byte) (proto.Message, error) {
				v, err := proto.DecodeRawPunch(b)
				return &v, err
			},
			ids: func(m proto.Message) (string, string, bool) {
				p := m.(*proto.RawPunch)
				return p.ID, proto.PunchID(p.DeviceSerial, p.UserID, p.DeviceTime, p.State), true
			},
		},
		{
			kind: proto.KindRawRecord,
			decode: func(b []byte) (proto.Message, error) {
				v, err := proto.DecodeRawRecord(b)
				return &v, err
			},
			ids: func(m proto.Message) (string, string, bool) {
				r := m.(*proto.RawRecord)
				return r.ID, proto.RecordID(r.Source, r.NaturalKey, r.Payload), true
			},
		},
		{
			kind: proto.KindHeartbeat,
			decode: func(b []byte) (proto.Message, error) {
				v, err := proto.DecodeHeartbeat(b)
				return &v, err
			},
			ids: func(m proto.Message) (string, string, bool) {
				h := m.(*proto.Heartbeat)
				return h.ID, proto.HeartbeatID(h.Source, h.RunID), true
			},
		},
		{
			kind: proto.KindAttendanceEvent,
			decode: func(b []byte) (proto.Message, error) {
				v, err := proto.DecodeAttendanceEvent(b)
				return &v, err
			},
			ids: func(m proto.Message) (string, string, bool) {
				e := m.(*proto.AttendanceEvent)
				return e.ID, proto.AttendanceID(e.Lineage.RawID, e.RulesVersion, e.RosterVersion), true
			},
		},
		{
			kind: proto.KindCleanRecord,
			decode: func(b []byte) (proto.Message, error) {
				v, err := proto.DecodeCleanRecord(b)
				return &v, err
			},
			ids: func(m proto.Message) (string, string, bool) {
				r := m.(*proto.CleanRecord)
				return r.ID, proto.CleanID(r.Lineage.RawID, r.RulesVersion), true
			},
		},
		{
			kind: proto.KindDeadLetter,
			decode: func(b []byte) (proto.Message, error) {
				v, err := proto.DecodeDeadLetter(b)
				return &v, err
			},
			ids: func(proto.Message) (string, string, bool) { return "", "", false },
		},
	}
}

// roundTrip is how decoded messages are compared: empty and absent slices and
// maps are the same message (the encoder omits empty optional ones).
var roundTrip = cmpopts.EquateEmpty()

// encodeDecode encodes m and decodes the result with c, as a consumer would.
func encodeDecode(t *testing.T, c codec, m proto.Message) ([]byte, proto.Message) {
	t.Helper()
	b, err := proto.Encode(m)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	m2, err := c.decode(b)
	if err != nil {
		t.Fatalf("decode of the re-encoded message: %v\n%s", err, b)
	}
	if diff := cmp.Diff(m, m2, roundTrip); diff != "" {
		t.Fatalf("encode→decode changed the message (-decoded +re-decoded):\n%s", diff)
	}
	return b, m2
}

// testFiles returns the *.json files under testdata/<dir>/<kind>, sorted.
func testFiles(t *testing.T, dir, kind string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, kind, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compileSchemas compiles the embedded schema of every kind, asserting
// formats (date-time, date), which JSON Schema 2020-12 leaves optional.
func compileSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	urls := map[string]string{}
	for _, kind := range proto.SchemaKinds() {
		b, err := proto.Schema(kind)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("schema %s: %v", kind, err)
		}
		urls[kind] = schemaURL(kind)
		if err := c.AddResource(urls[kind], doc); err != nil {
			t.Fatalf("schema %s: %v", kind, err)
		}
	}
	out := map[string]*jsonschema.Schema{}
	for kind, u := range urls {
		s, err := c.Compile(u)
		if err != nil {
			t.Fatalf("compile schema %s: %v", kind, err)
		}
		out[kind] = s
	}
	return out
}

func schemaURL(kind string) string {
	return "https://punchflow.dev/schema/v1/" + kind + ".schema.json"
}

// validateJSON validates the JSON document b against s.
func validateJSON(s *jsonschema.Schema, b []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}
