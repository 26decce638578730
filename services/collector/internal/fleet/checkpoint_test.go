package fleet

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

func TestPlan(t *testing.T) {
	log := func(ids ...string) func(int) string { return func(i int) string { return ids[i] } }
	tests := []struct {
		name      string
		cp        Checkpoint
		ids       []string
		wantStart int
		wantWhy   string // substring; "" means no reason
	}{
		{"first read", Checkpoint{}, []string{"a", "b"}, 0, ""},
		{"empty log, empty checkpoint", Checkpoint{}, nil, 0, ""},
		{"nothing new", Checkpoint{Count: 2, FirstID: "a", LastID: "b"}, []string{"a", "b"}, 2, ""},
		{"appended", Checkpoint{Count: 2, FirstID: "a", LastID: "b"}, []string{"a", "b", "c", "d"}, 2, ""},
		{"cleared (shrank)", Checkpoint{Count: 3, FirstID: "a", LastID: "c"}, []string{"x"}, 0, "shrank from 3 to 1"},
		{"cleared to empty", Checkpoint{Count: 3, FirstID: "a", LastID: "c"}, nil, 0, "shrank from 3 to 0"},
		{"cleared and refilled past the count", Checkpoint{Count: 2, FirstID: "a", LastID: "b"}, []string{"x", "y", "z"}, 0, "first record differs"},
		{"rewritten at the checkpoint", Checkpoint{Count: 2, FirstID: "a", LastID: "b"}, []string{"a", "y", "z"}, 0, "record 1 differs"},
		{"old checkpoint without first id", Checkpoint{Count: 1, LastID: "a"}, []string{"a", "b"}, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, why := Plan(tt.cp, len(tt.ids), log(tt.ids...))
			if start != tt.wantStart {
				t.Errorf("start = %d, want %d", start, tt.wantStart)
			}
			if (why == "") != (tt.wantWhy == "") || !strings.Contains(why, tt.wantWhy) {
				t.Errorf("reason = %q, want one containing %q", why, tt.wantWhy)
			}
		})
	}
}

// TestLogView: decoded and failed records are put back in device order, the
// trailing partial record is set apart, and the checkpoint identifies the
// first and last whole records.
func TestLogView(t *testing.T) {
	var data []byte
	for i := range 5 {
		r := zk.AttendanceRecord{UID: i + 1, UserID: fmt.Sprint(1001 + i), DeviceTime: time.Date(2024, 1, 2, 8, i, 0, 0, time.UTC), VerifyMode: 1}
		var err error
		if data, err = zk.AppendAttendance(data, r, zk.AttendanceSize40); err != nil {
			t.Fatal(err)
		}
	}
	copy(data[1*40+27:], []byte{0xFF, 0xFF, 0xFF, 0xFF}) // record 1: impossible time
	copy(data[4*40+27:], []byte{0xFF, 0xFF, 0xFF, 0xFF}) // record 4, the last whole one
	data = append(data, 1, 2, 3)                         // a partial record
	recs, bad, err := zk.DecodeAttendance(data, zk.AttendanceSize40)
	if err != nil {
		t.Fatal(err)
	}
	v := newLogView("S1", recs, bad)
	if v.n() != 5 || v.size != 40 || v.trailing == nil || len(v.bad) != 2 {
		t.Fatalf("view: n=%d size=%d trailing=%v bad=%d; want 5, 40, set, 2", v.n(), v.size, v.trailing, len(v.bad))
	}
	var got []string
	for i := range v.n() {
		if r, b := v.at(i); b != nil {
			got = append(got, fmt.Sprintf("bad@%d", b.Index))
		} else {
			got = append(got, r.UserID)
		}
	}
	if diff := cmp.Diff([]string{"1001", "bad@1", "1003", "1004", "bad@4"}, got); diff != "" {
		t.Errorf("device order (-want +got):\n%s", diff)
	}
	cp := v.checkpoint(Checkpoint{})
	want := Checkpoint{Count: 5, FirstID: punchID("S1", &recs[0]), LastID: rawID("S1", data[160:200]), RecordSize: 40, Trailing: rawID("S1", []byte{1, 2, 3})}
	if diff := cmp.Diff(want, cp); diff != "" {
		t.Errorf("checkpoint (-want +got):\n%s", diff)
	}
	if start, why := Plan(cp, v.n(), v.id); start != 5 || why != "" {
		t.Errorf("Plan over the same log = %d, %q; want 5", start, why)
	}
}
