package proto_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/proto"
)

func TestDeadLetterHeaderRoundTrip(t *testing.T) {
	failedAt := time.Date(2024, 3, 11, 17, 5, 2, 518_000_000, time.UTC)
	tests := []struct {
		name string
		dl   proto.DeadLetter
	}{
		{"minimal", proto.DeadLetter{SchemaVersion: "1.0", Stage: proto.StageCollect, ReasonCode: proto.ReasonBadLine}},
		{"bad csv line", proto.DeadLetter{
			SchemaVersion: "1.0", Stage: proto.StageCollect, ReasonCode: proto.ReasonBadLine,
			Reason: `line 214: want 6 columns, got 5`, SourceFile: "hq/2024-03-11.csv", SourceLine: 214, FailedAt: failedAt,
		}},
		{"every field", proto.DeadLetter{
			SchemaVersion: "1.0", Stage: proto.StageLoad, ReasonCode: proto.ReasonRejectedBySink,
			Reason:          "insert attendance_events: ERROR: value too long (SQLSTATE 22001)",
			OriginalSubject: "clean.attendance.hq", OriginalStream: "CLEAN", OriginalSeq: 88123, Deliveries: 3,
			SourceFile: "hq/2024-03-11.csv", SourceLine: 7, FailedAt: failedAt.In(time.FixedZone("", 3600)),
			MsgID: "4268581429b3ebb24404be2d6bc17271", CorrelationID: "1c2d3e4f5a6b4c7d8e9f0a1b2c3d4e5f",
		}},
		{"future minor version", proto.DeadLetter{SchemaVersion: "1.7", Stage: proto.StageHealth, ReasonCode: "new_reason"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.dl.Header()
			if got := h[proto.HeaderType]; len(got) != 1 || got[0] != proto.KindDeadLetter {
				t.Errorf("%s = %q, want %q", proto.HeaderType, got, proto.KindDeadLetter)
			}
			if got := h[proto.HeaderSchemaVersion]; len(got) != 1 || got[0] != tt.dl.SchemaVersion {
				t.Errorf("%s = %q, want %q", proto.HeaderSchemaVersion, got, tt.dl.SchemaVersion)
			}
			got, err := proto.DeadLetterFromHeader(h)
			if err != nil {
				t.Fatalf("DeadLetterFromHeader: %v\nheaders: %q", err, h)
			}
			if diff := cmp.Diff(tt.dl, got); diff != "" {
				t.Errorf("Header → DeadLetterFromHeader changed the dead letter (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeadLetterHeader(t *testing.T) {
	dl := proto.DeadLetter{Stage: proto.StageTransform, ReasonCode: proto.ReasonInvalid, MsgID: "daed81c7591590354c6900614a2ef3ba",
		FailedAt: time.Date(2024, 3, 11, 18, 0, 0, 0, time.FixedZone("CET", 3600))}
	h := dl.Header()
	want := map[string]string{
		proto.HeaderType:               proto.KindDeadLetter,
		proto.HeaderSchemaVersion:      proto.SchemaVersion, // stamped when empty
		proto.HeaderDLQStage:           "transform",
		proto.HeaderDLQReasonCode:      "invalid",
		proto.HeaderDLQReason:          "",
		proto.HeaderDLQOriginalSubject: "",
		proto.HeaderDLQFailedAt:        "2024-03-11T17:00:00Z", // in UTC
		proto.HeaderMsgID:              "dlq-transform-daed81c7591590354c6900614a2ef3ba",
	}
	got := map[string]string{}
	for k, v := range h {
		if len(v) != 1 {
			t.Errorf("header %s has %d values, want 1", k, len(v))
		}
		got[k] = v[0]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Header() (-want +got):\n%s", diff)
	}
	back, err := proto.DeadLetterFromHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if back.MsgID != dl.MsgID || back.SchemaVersion != proto.SchemaVersion {
		t.Errorf("read back msg id %q version %q, want %q %q", back.MsgID, back.SchemaVersion, dl.MsgID, proto.SchemaVersion)
	}
}

// TestDeadLetterSinkHeader: a load-stage dead letter names its sink in a
// header and in its de-duplication id, and reads back the original id.
func TestDeadLetterSinkHeader(t *testing.T) {
	dl := proto.DeadLetter{Stage: proto.StageLoad, ReasonCode: proto.ReasonRejectedBySink, MsgID: "9598aedfac45d324e0fa60448c48bcb4",
		Sink: "mysql", FailedAt: time.Date(2024, 3, 11, 18, 0, 0, 0, time.UTC)}
	h := dl.Header()
	if got := h[proto.HeaderDLQSink]; len(got) != 1 || got[0] != "mysql" {
		t.Errorf("%s = %q, want mysql", proto.HeaderDLQSink, got)
	}
	if got := h[proto.HeaderMsgID]; len(got) != 1 || got[0] != "dlq-load-mysql-9598aedfac45d324e0fa60448c48bcb4" {
		t.Errorf("%s = %q, want the stage, the sink and the original id", proto.HeaderMsgID, got)
	}
	other := dl
	other.Sink = "postgres"
	if h[proto.HeaderMsgID][0] == other.Header()[proto.HeaderMsgID][0] {
		t.Error("two sinks' dead letters of one message share a de-duplication id")
	}
	back, err := proto.DeadLetterFromHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if back.MsgID != dl.MsgID || back.Sink != "mysql" {
		t.Errorf("read back msg id %q sink %q, want %q mysql", back.MsgID, back.Sink, dl.MsgID)
	}
}

// TestDeadLetterGoldenHeaders sends every golden dead letter through its
// header form.
func TestDeadLetterGoldenHeaders(t *testing.T) {
	for _, file := range testFiles(t, "golden", proto.KindDeadLetter) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			dl, err := proto.DecodeDeadLetter(readFile(t, file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := proto.DeadLetterFromHeader(dl.Header())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(dl, got); diff != "" {
				t.Errorf("(-golden +read back):\n%s", diff)
			}
		})
	}
}

func TestDeadLetterFromHeaderErrors(t *testing.T) {
	valid := func() map[string][]string {
		dl := proto.DeadLetter{Stage: proto.StageLoad, ReasonCode: proto.ReasonRetriesSpent, OriginalSubject: "clean.attendance.hq"}
		return dl.Header()
	}
	tests := []struct {
		name string
		edit func(h map[string][]string)
		want error
	}{
		{"no headers at all", func(h map[string][]string) { clear(h) }, proto.ErrInvalid},
		{"missing stage", func(h map[string][]string) { delete(h, proto.HeaderDLQStage) }, proto.ErrInvalid},
		{"missing reason code", func(h map[string][]string) { delete(h, proto.HeaderDLQReasonCode) }, proto.ErrInvalid},
		{"empty reason code", func(h map[string][]string) { h[proto.HeaderDLQReasonCode] = []string{""} }, proto.ErrInvalid},
		{"unknown stage", func(h map[string][]string) { h[proto.HeaderDLQStage] = []string{"parse"} }, proto.ErrInvalid},
		{"missing schema version", func(h map[string][]string) { delete(h, proto.HeaderSchemaVersion) }, proto.ErrInvalid},
		{"bad schema version", func(h map[string][]string) { h[proto.HeaderSchemaVersion] = []string{"v1"} }, proto.ErrInvalid},
		{"major version 2", func(h map[string][]string) { h[proto.HeaderSchemaVersion] = []string{"2.0"} }, proto.ErrUnsupportedVersion},
		{"major version 2 without a stage", func(h map[string][]string) {
			h[proto.HeaderSchemaVersion] = []string{"2.0"}
			delete(h, proto.HeaderDLQStage)
		}, proto.ErrUnsupportedVersion},
		{"sequence not a number", func(h map[string][]string) { h[proto.HeaderDLQOriginalSeq] = []string{"12a"} }, proto.ErrInvalid},
		{"negative deliveries", func(h map[string][]string) { h[proto.HeaderDLQDeliveries] = []string{"-1"} }, proto.ErrInvalid},
		{"negative source line", func(h map[string][]string) { h[proto.HeaderDLQSourceLine] = []string{"-3"} }, proto.ErrInvalid},
		{"failed at not RFC 3339", func(h map[string][]string) { h[proto.HeaderDLQFailedAt] = []string{"11.03.2024 18:00"} }, proto.ErrInvalid},
		{"failed at beyond year 9999 in UTC", func(h map[string][]string) {
			h[proto.HeaderDLQFailedAt] = []string{"9999-12-31T23:00:00-02:00"}
		}, proto.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := valid()
			if _, err := proto.DeadLetterFromHeader(h); err != nil {
				t.Fatalf("unedited headers: %v", err)
			}
			tt.edit(h)
			_, err := proto.DeadLetterFromHeader(h)
			if !errors.Is(err, tt.want) {
				t.Errorf("DeadLetterFromHeader error = %v, want one that wraps %q", err, tt.want)
			}
		})
	}
}
