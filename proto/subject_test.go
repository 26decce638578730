package proto_test

import (
	"testing"

	"github.com/punchflow/punchflow/proto"
)

func TestToken(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"clean", "CQUJ190460155", "CQUJ190460155"},
		{"dash and underscore", "plant-2_north", "plant-2_north"},
		{"empty", "", "_"},
		{"dot", "hq.berlin", "hq_berlin"},
		{"space", "gate 2", "gate_2"},
		{"tab and newline", "a\tb\nc", "a_b_c"},
		{"star wildcard", "*", "_"},
		{"gt wildcard", ">", "_"},
		{"wildcards inside", "a*b>c", "a_b_c"},
		{"colon", "csv:hq-drop", "csv_hq-drop"},
		{"slash", "departments/42", "departments_42"},
		{"utf-8 letter is two bytes", "Süd", "S__d"},
		{"only punctuation", "..", "__"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := proto.Token(tt.in); got != tt.want {
				t.Errorf("Token(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSubjects(t *testing.T) {
	tests := []struct {
		name, got, want, kind string
	}{
		{"raw punch", proto.RawPunchSubject("hq", "CQUJ190460155"), "raw.punch.hq.CQUJ190460155", proto.KindRawPunch},
		{"raw punch/unsafe names", proto.RawPunchSubject("hq.berlin", "dev *1"), "raw.punch.hq_berlin.dev__1", proto.KindRawPunch},
		{"raw punch/empty names", proto.RawPunchSubject("", ""), "raw.punch._._", proto.KindRawPunch},
		{"raw record", proto.RawRecordSubject("api:helpdesk"), "raw.record.api_helpdesk", proto.KindRawRecord},
		{"raw record/wildcard", proto.RawRecordSubject(">"), "raw.record._", proto.KindRawRecord},
		{"clean attendance", proto.CleanAttendanceSubject("plant-2"), "clean.attendance.plant-2", proto.KindAttendanceEvent},
		{"clean record", proto.CleanRecordSubject("sql:hr"), "clean.record.sql_hr", proto.KindCleanRecord},
		{"health device", proto.HealthDeviceSubject("CQUJ190460155"), "health.device.CQUJ190460155", proto.KindHeartbeat},
		{"health source", proto.HealthSourceSubject("csv:hq-drop"), "health.source.csv_hq-drop", proto.KindHeartbeat},
		{"dlq", proto.DLQSubject(proto.StageTransform, "raw.punch.hq.CQUJ190460155"), "dlq.transform.raw.punch.hq.CQUJ190460155", ""},
		{"dlq/unsafe stage", proto.DLQSubject("trans form", "clean.attendance.hq"), "dlq.trans_form.clean.attendance.hq", ""},
		{"dlq/no original subject", proto.DLQSubject(proto.StageCollect, ""), "dlq.collect._", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("subject = %q, want %q", tt.got, tt.want)
			}
			if got := proto.SubjectKind(tt.got); got != tt.kind {
				t.Errorf("SubjectKind(%q) = %q, want %q", tt.got, got, tt.kind)
			}
		})
	}
}

func TestSubjectKind(t *testing.T) {
	tests := []struct {
		name, subject, want string
	}{
		{"raw punch", "raw.punch.hq.X", proto.KindRawPunch},
		{"raw record", "raw.record.api_helpdesk", proto.KindRawRecord},
		{"clean attendance", "clean.attendance.hq", proto.KindAttendanceEvent},
		{"clean record", "clean.record.sql_hr", proto.KindCleanRecord},
		{"health device", "health.device.X", proto.KindHeartbeat},
		{"health source", "health.source.csv_hq-drop", proto.KindHeartbeat},
		{"empty", "", ""},
		{"prefix only", "raw", ""},
		{"no token after the type", "raw.punch", ""},
		{"unknown raw type", "raw.photo.hq.X", ""},
		{"dead letter", "dlq.collect.raw.punch.hq.X", ""},
		{"not ours", "orders.created", ""},
		{"prefix is case-sensitive", "RAW.punch.hq.X", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := proto.SubjectKind(tt.subject); got != tt.want {
				t.Errorf("SubjectKind(%q) = %q, want %q", tt.subject, got, tt.want)
			}
		})
	}
}

func TestMessageSubjects(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"heartbeat device", (&proto.Heartbeat{Kind: proto.HeartbeatDevice, Source: "CQUJ190460155"}).Subject(), "health.device.CQUJ190460155"},
		{"heartbeat source", (&proto.Heartbeat{Kind: proto.HeartbeatSource, Source: "csv:hq-drop"}).Subject(), "health.source.csv_hq-drop"},
		{"dead letter", (&proto.DeadLetter{Stage: proto.StageLoad, OriginalSubject: "clean.attendance.hq"}).Subject(), "dlq.load.clean.attendance.hq"},
		{"dead letter without original", (&proto.DeadLetter{Stage: proto.StageCollect}).Subject(), "dlq.collect._"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("Subject() = %q, want %q", tt.got, tt.want)
			}
		})
	}
}
