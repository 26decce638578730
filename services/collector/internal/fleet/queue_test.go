package fleet

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/services/collector/internal/zksim"
)

// TestSeed: seeding is idempotent (one work item per device however often
// and by however many replicas it runs) and prunes items of devices no
// longer in the fleet.
func TestSeed(t *testing.T) {
	e := newEnv(t)
	var devs []Device
	for i := range 3 {
		devs = append(devs, Device{Serial: fmt.Sprintf("S%d", i), Host: "127.0.0.1", Site: "hq", Mode: []Mode{ModePoll, ModeLive}[i%2]})
	}
	ctx := testContext(t, 10*time.Second)
	if _, err := e.js.Publish(ctx, "fleet.poll.GONE", []byte(`{"serial":"GONE"}`)); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := e.fleet(Config{Prune: true}, devs...).Seed(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st, err := e.js.Stream(ctx, e.topo.FleetStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("fleet.>"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"fleet.poll.S0": 1, "fleet.live.S1": 1, "fleet.poll.S2": 1}
	if fmt.Sprint(info.State.Subjects) != fmt.Sprint(want) || info.State.Msgs != 3 {
		t.Errorf("stream holds %d messages on %v, want one per device %v", info.State.Msgs, info.State.Subjects, want)
	}
}

// TestReplicasShareDevices: two replicas poll four devices that accept one
// session at a time. Every device is polled again and again, never by both
// replicas at once (the devices refuse a second session, and none was
// refused), and when one replica stops the other carries on with all four.
func TestReplicasShareDevices(t *testing.T) {
	e := newEnv(t)
	var sims []*zksim.Device
	var devs []Device
	for i := range 4 {
		s, d := sim(t, zksim.Config{Seed: int64(40 + i), Records: 50, Faults: zksim.Faults{OneSession: zksim.SessionsRefuse}})
		d.PollInterval = 100 * time.Millisecond
		sims, devs = append(sims, s), append(devs, d)
	}
	stopA := e.runFleet(e.fleet(Config{Concurrency: 2, Replica: "a"}, devs...))
	e.runFleet(e.fleet(Config{Concurrency: 2, Replica: "b"}, devs...))
	polled := func(min int) func() bool {
		return func() bool {
			for _, d := range devs {
				if len(e.heartbeats(d.Serial)) < min {
					return false
				}
			}
			return true
		}
	}
	eventually(t, 20*time.Second, "every device polled 4 times", polled(4))
	stopA()
	stoppedAt := time.Now()
	counts := map[string]int{}
	for _, d := range devs {
		counts[d.Serial] = len(e.heartbeats(d.Serial))
	}
	eventually(t, 20*time.Second, "every device polled twice more after replica a stopped", func() bool {
		for _, d := range devs {
			if len(e.heartbeats(d.Serial)) < counts[d.Serial]+2 {
				return false
			}
		}
		return true
	})
	for i, d := range devs {
		if st := sims[i].Stats(); st.Refused != 0 {
			t.Errorf("device %s refused %d sessions: two replicas held it at once", d.Serial, st.Refused)
		}
		if n := len(e.punches(d.Serial)); n != 50 {
			t.Errorf("device %s: %d punches in RAW, want 50", d.Serial, n)
		}
		last := e.heartbeats(d.Serial)
		if hb := last[len(last)-1]; hb.ErrorClass != "" || hb.ObservedAt.Before(stoppedAt) {
			t.Errorf("device %s: last heartbeat %+v", d.Serial, hb)
		}
	}
}
