package proto_test

import (
	"regexp"
	"testing"

	"github.com/punchflow/punchflow/proto"
)

var idPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestIDVectors pins the id functions' outputs: an id is the identity of a
// record across the pipeline and in the databases, so changing the hash (its
// domain prefix, the length prefixes, the truncation) must break this test.
// The vectors were computed independently as
// hex(sha256(kind || uvarint(len(f1)) || f1 || ...)[:16]).
func TestIDVectors(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"punch", proto.PunchID("CQUJ190460155", "00042", "2024-03-11T08:57:31", 0), "daed81c7591590354c6900614a2ef3ba"},
		{"punch/empty", proto.PunchID("", "", "", 0), "e16708f16dd1747cf8826e9ba7af0ad9"},
		{"punch/state 255", proto.PunchID("CQUJ190460155", "42", "2024-03-11T08:57:31", 255), "962bd253d46982f18db81ff5f720b0e0"},
		{"record", proto.RecordID("api:helpdesk", "TCK-20931", []byte(`{"status":"open"}`)), "73b75855c14d5970b4f7b755b78694e7"},
		{"record/empty", proto.RecordID("", "", nil), "dfc250418391173778e240b6c6c383b6"},
		{"clean", proto.CleanID("3d195fc786c47ba01e9090273768bc18", "9c1f4e2ab7d35a60"), "4268581429b3ebb24404be2d6bc17271"},
		{"attendance/no roster", proto.AttendanceID("3d195fc786c47ba01e9090273768bc18", "9c1f4e2ab7d35a60", ""), "4268581429b3ebb24404be2d6bc17271"},
		{"attendance/roster", proto.AttendanceID("3d195fc786c47ba01e9090273768bc18", "9c1f4e2ab7d35a60", "5e0c7a21b9d4"), "6d7d6b6eee0463bfc6b55b988a833863"},
		{"heartbeat", proto.HeartbeatID("CQUJ190460155", "6f1d2c3b4a5948e7b0c1d2e3f4a5b6c7"), "7e457e1aa3207c2ec3ac957a39d23820"},
		{"heartbeat/utf-8", proto.HeartbeatID("Ünïcødé ✓", "run-1"), "b239764a8cf8492877e432123a961e57"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %s, want %s", tt.got, tt.want)
			}
		})
	}
}

// TestIDDeterministic checks that an id depends on its inputs only and has
// the documented shape.
func TestIDDeterministic(t *testing.T) {
	tests := []struct {
		name string
		id   func() string
	}{
		{"PunchID", func() string { return proto.PunchID("CQUJ190460155", "00042", "2024-03-11T08:57:31", 1) }},
		{"RecordID", func() string { return proto.RecordID("sql:hr", "departments/42", []byte(`{"dept_id":42}`)) }},
		{"CleanID", func() string { return proto.CleanID("daed81c7591590354c6900614a2ef3ba", "9c1f4e2ab7d35a60") }},
		{"AttendanceID", func() string {
			return proto.AttendanceID("daed81c7591590354c6900614a2ef3ba", "9c1f4e2ab7d35a60", "5e0c7a21b9d4")
		}},
		{"HeartbeatID", func() string { return proto.HeartbeatID("csv:hq-drop", "run-7") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := tt.id()
			if !idPattern.MatchString(first) {
				t.Errorf("id %q is not 32 lowercase hex characters", first)
			}
			for range 3 {
				if got := tt.id(); got != first {
					t.Fatalf("second call gave %s, first gave %s", got, first)
				}
			}
		})
	}
}

// TestIDDistinct checks that different tuples get different ids, in
// particular tuples that are equal under naive concatenation, and that the
// id functions do not collide with each other.
func TestIDDistinct(t *testing.T) {
	tests := []struct {
		name string
		a, b string
	}{
		{"punch/serial|user shifted", proto.PunchID("ab", "c", "2024-03-11T08:00:00", 0), proto.PunchID("a", "bc", "2024-03-11T08:00:00", 0)},
		{"punch/user|time shifted", proto.PunchID("S1", "12", "3", 0), proto.PunchID("S1", "1", "23", 0)},
		{"punch/time|state shifted", proto.PunchID("S1", "7", "2024-03-11T08:00:01", 0), proto.PunchID("S1", "7", "2024-03-11T08:00:0", 10)},
		{"punch/state", proto.PunchID("S1", "7", "2024-03-11T08:00:00", 0), proto.PunchID("S1", "7", "2024-03-11T08:00:00", 1)},
		{"punch/user id zeros", proto.PunchID("S1", "042", "2024-03-11T08:00:00", 0), proto.PunchID("S1", "42", "2024-03-11T08:00:00", 0)},
		{"punch/empty field moved", proto.PunchID("", "a", "", 0), proto.PunchID("a", "", "", 0)},
		{"record/source|key shifted", proto.RecordID("ab", "c", []byte("{}")), proto.RecordID("a", "bc", []byte("{}"))},
		{"record/key|content shifted", proto.RecordID("s", "k1", []byte("2")), proto.RecordID("s", "k", []byte("12"))},
		{"record/content changed", proto.RecordID("s", "k", []byte(`{"v":1}`)), proto.RecordID("s", "k", []byte(`{"v":2}`))},
		{"clean/input|rules shifted", proto.CleanID("ab", "c"), proto.CleanID("a", "bc")},
		{"clean/rules version", proto.CleanID("daed81c7591590354c6900614a2ef3ba", "r1"), proto.CleanID("daed81c7591590354c6900614a2ef3ba", "r2")},
		{"attendance/roster version", proto.AttendanceID("i", "r", "v1"), proto.AttendanceID("i", "r", "v2")},
		{"attendance/roster vs none", proto.AttendanceID("i", "r", "v1"), proto.AttendanceID("i", "r", "")},
		{"attendance/rules|roster shifted", proto.AttendanceID("i", "rv", "1"), proto.AttendanceID("i", "r", "v1")},
		{"heartbeat/source|run shifted", proto.HeartbeatID("ab", "c"), proto.HeartbeatID("a", "bc")},
		{"kinds/clean vs heartbeat", proto.CleanID("x", "y"), proto.HeartbeatID("x", "y")},
		{"kinds/record vs clean", proto.RecordID("x", "y", nil), proto.CleanID("x", "y")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.a == tt.b {
				t.Errorf("both tuples have id %s", tt.a)
			}
		})
	}
}

// TestConstructorsSetID checks that the New* constructors stamp the version
// and the id of the id function.
func TestConstructorsSetID(t *testing.T) {
	p := proto.NewRawPunch(proto.RawPunch{DeviceSerial: "CQUJ190460155", UserID: "00042", DeviceTime: "2024-03-11T08:57:31"})
	if p.ID != "daed81c7591590354c6900614a2ef3ba" || p.SchemaVersion != proto.SchemaVersion {
		t.Errorf("NewRawPunch: id %s version %s", p.ID, p.SchemaVersion)
	}
	h := proto.NewHeartbeat(proto.Heartbeat{Source: "CQUJ190460155", RunID: "6f1d2c3b4a5948e7b0c1d2e3f4a5b6c7"})
	if h.ID != "7e457e1aa3207c2ec3ac957a39d23820" || h.SchemaVersion != proto.SchemaVersion {
		t.Errorf("NewHeartbeat: id %s version %s", h.ID, h.SchemaVersion)
	}
	r := proto.NewRawRecord(proto.RawRecord{Source: "api:helpdesk", NaturalKey: "TCK-20931", Payload: []byte("\n {\"status\":\"open\"}\r\n")})
	if r.ID != "73b75855c14d5970b4f7b755b78694e7" || string(r.Payload) != `{"status":"open"}` {
		t.Errorf("NewRawRecord: id %s payload %q, want the id of the payload without surrounding white space", r.ID, r.Payload)
	}
}
