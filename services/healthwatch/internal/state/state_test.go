package state

import (
	"testing"
	"time"

	"github.com/punchflow/punchflow/proto"
)

func hb(at time.Time, reachable bool, class string, published int) proto.Heartbeat {
	return proto.NewHeartbeat(proto.Heartbeat{Source: "csv", Kind: proto.HeartbeatSource, RunID: at.String(),
		ObservedAt: at, Reachable: reachable, ErrorClass: class, RecordsPublished: published})
}

func TestApply(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	steps := []struct {
		name        string
		hb          proto.Heartbeat
		wantChanged bool
		wantStatus  string
		wantSince   time.Time
		wantFails   int
		wantTotal   int
	}{
		{"first success", hb(t0, true, "", 10), true, StatusOK, t0, 0, 10},
		{"second success keeps since", hb(t0.Add(time.Minute), true, "", 5), true, StatusOK, t0, 0, 15},
		{"stale redelivery is ignored", hb(t0.Add(30*time.Second), false, "timeout", 0), false, StatusOK, t0, 0, 15},
		{"failure changes status", hb(t0.Add(2*time.Minute), true, proto.ErrorClassIO, 0), true, StatusFailing, t0.Add(2 * time.Minute), 1, 15},
		{"unreachable counts failures", hb(t0.Add(3*time.Minute), false, proto.ErrorClassTimeout, 0), true, StatusUnreachable, t0.Add(3 * time.Minute), 2, 15},
		{"recovery resets failures", hb(t0.Add(4*time.Minute), true, "", 1), true, StatusOK, t0.Add(4 * time.Minute), 0, 16},
	}
	var cur *Source
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got, changed := Apply(cur, st.hb)
			if changed != st.wantChanged {
				t.Fatalf("changed = %v, want %v", changed, st.wantChanged)
			}
			if got.Status != st.wantStatus || !got.Since.Equal(st.wantSince) || got.ConsecutiveFailures != st.wantFails || got.RecordsPublished != st.wantTotal {
				t.Fatalf("got status %s since %v fails %d total %d; want %s since %v fails %d total %d",
					got.Status, got.Since, got.ConsecutiveFailures, got.RecordsPublished, st.wantStatus, st.wantSince, st.wantFails, st.wantTotal)
			}
			cur = &got
		})
	}
	if cur.LastSuccessAt == nil || !cur.LastSuccessAt.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("LastSuccessAt = %v", cur.LastSuccessAt)
	}
}

func TestKey(t *testing.T) {
	if got := Key(proto.Heartbeat{Kind: "device", Source: "CQUJ 19.04"}); got != "device.CQUJ_19_04" {
		t.Fatalf("Key = %q", got)
	}
}
