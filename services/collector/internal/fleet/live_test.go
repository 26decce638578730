package fleet

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/zk"
	"github.com/punchflow/punchflow/services/collector/internal/zksim"
)

// runFleet runs f against the work queue (seeded, consumers bound) until
// the returned stop is called; stop waits for Run to return.
func (e *env) runFleet(f *Fleet) (stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := f.Seed(testContext(e.t, 5*time.Second)); err != nil {
		e.t.Fatal(err)
	}
	pc, lc := f.ConsumerConfigs()
	poll, err := e.js.CreateOrUpdateConsumer(testContext(e.t, 5*time.Second), e.topo.FleetStream, pc)
	if err != nil {
		e.t.Fatal(err)
	}
	live, err := e.js.CreateOrUpdateConsumer(testContext(e.t, 5*time.Second), e.topo.FleetStream, lc)
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, poll, live) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				e.t.Error("Run did not return within 10 s of its context ending")
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// TestLive: a live device's log is reconciled when the session opens, every
// punch is then published as it happens under the session's correlation id,
// and punches made while no collector was connected are published by the
// reconciling read of the next session.
func TestLive(t *testing.T) {
	e := newEnv(t)
	dev, d := sim(t, zksim.Config{Seed: 31, Records: 100})
	d.Mode, d.PollInterval = ModeLive, 300*time.Millisecond
	stop := e.runFleet(e.fleet(Config{}, d))
	eventually(t, 10*time.Second, "the log is reconciled", func() bool { return len(e.punches(d.Serial)) == 100 })
	session := e.messages(e.topo.RawStream, "raw.punch.>")[0].Headers().Get(proto.HeaderCorrelationID)

	for i, u := range []string{"1001", "1002", "1003"} {
		r, err := dev.Punch(u, zk.StateCheckIn, 15)
		if err != nil {
			t.Fatal(err)
		}
		id := punchID(d.Serial, &r)
		eventually(t, 5*time.Second, "punch "+u+" is in RAW", func() bool { return len(e.punches(d.Serial)) == 101+i })
		msgs := e.messages(e.topo.RawStream, "raw.punch.>")
		last := msgs[len(msgs)-1]
		if got := last.Headers().Get(proto.HeaderMsgID); got != id {
			t.Errorf("last message %s, want the punch %s", got, id)
		}
		if got := last.Headers().Get(proto.HeaderCorrelationID); got != session {
			t.Errorf("event published under correlation id %s, want the session's %s", got, session)
		}
	}
	if n := dev.Stats().EventsSent; n != 3 {
		t.Errorf("device sent %d events, want 3", n)
	}
	// A window or two pass: heartbeats of the same session, and no extra
	// reconciling read (the count matches checkpoint + events).
	eventually(t, 5*time.Second, "two window heartbeats", func() bool { return len(e.heartbeats(d.Serial)) >= 3 })
	for _, hb := range e.heartbeats(d.Serial) {
		if !strings.HasPrefix(hb.RunID, session+"-") || hb.ErrorClass != "" || !hb.Reachable {
			t.Errorf("heartbeat %+v, want run id %s-<n>, no error", hb, session)
		}
	}
	if p := dev.Stats().Prepares; p != 1 {
		t.Errorf("%d bulk reads, want 1: events kept the checkpoint in step", p)
	}

	stop()
	if !dev.Enabled() {
		t.Error("device left disabled")
	}
	eventually(t, 5*time.Second, "the session is closed", func() bool { return dev.Sessions() == 0 })
	var missed []string
	for _, u := range []string{"1004", "1005"} {
		r, err := dev.Punch(u, zk.StateCheckOut, 1)
		if err != nil {
			t.Fatal(err)
		}
		missed = append(missed, punchID(d.Serial, &r))
	}
	e.runFleet(e.fleet(Config{}, d))
	eventually(t, 10*time.Second, "the punches made while disconnected are published", func() bool { return len(e.punches(d.Serial)) == 105 })
	got := ids(e.punches(d.Serial))
	for _, id := range missed {
		if !contains(got, id) {
			t.Errorf("missed punch %s not published", id)
		}
	}
}

// TestLiveNoticesChangedLog: when the log no longer holds the checkpoint
// plus the events seen (here another client cleared it; a device that drops
// an event looks the same), the next window reads the log again, and the
// session goes on publishing events from the new checkpoint.
func TestLiveNoticesChangedLog(t *testing.T) {
	e := newEnv(t)
	dev, d := sim(t, zksim.Config{Seed: 32, Records: 10})
	d.Mode, d.PollInterval = ModeLive, 300*time.Millisecond
	e.runFleet(e.fleet(Config{}, d))
	eventually(t, 10*time.Second, "the log is reconciled", func() bool { return len(e.punches(d.Serial)) == 10 })
	c, err := zk.Dial(testContext(t, 5*time.Second), dev.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ClearAttendance(testContext(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	eventually(t, 10*time.Second, "a reconciling read after the count changed", func() bool { return dev.Stats().Prepares >= 2 })
	if _, err := dev.Punch("1001", zk.StateCheckIn, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the next punch is published", func() bool { return len(e.punches(d.Serial)) == 11 })
	if st := e.state(d.Serial); st.Checkpoint.Count != 0 {
		t.Errorf("checkpoint %+v, want the cleared log's (0 records)", st.Checkpoint)
	}
}

func contains(sorted []string, s string) bool {
	for _, x := range sorted {
		if x == s {
			return true
		}
	}
	return false
}
