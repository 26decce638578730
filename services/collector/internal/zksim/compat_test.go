package zksim

import (
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// TestFrameGapAcrossReplies: the frame gap also separates the last frame
// of one reply from the first of the next, and one event from the next,
// which the Node clients need (they pipeline CMD_READ_BUFFER requests and
// parse one frame per socket read; see the interop tests). Only the lower
// bound the gap guarantees is checked.
func TestFrameGapAcrossReplies(t *testing.T) {
	const gap = 80 * time.Millisecond
	t.Run("replies", func(t *testing.T) {
		t.Parallel()
		dev := start(t, Config{FrameGap: gap})
		r := rawDial(t, dev, "tcp")
		r.connect()
		sent := time.Now()
		first := r.send(zk.CmdGetVersion, nil)
		second := r.send(zk.CmdGetVersion, nil)
		r.expect(zk.CmdAckOK, first)
		r.expect(zk.CmdAckOK, second)
		if took := time.Since(sent); took < gap {
			t.Errorf("two one-frame replies arrived within %v, want at least the %v gap between them", took, gap)
		}
	})
	t.Run("events", func(t *testing.T) {
		t.Parallel()
		dev := start(t, Config{FrameGap: gap})
		r := rawDial(t, dev, "tcp")
		r.connect()
		r.expect(zk.CmdAckOK, r.send(zk.CmdRegEvent, []byte{1, 0, 0, 0}))
		punched := time.Now()
		for _, user := range []string{"1001", "1002"} {
			if _, err := dev.Punch(user, zk.StateCheckIn, 1); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 {
			if p := r.expect(zk.CmdRegEvent, 0); p.SessionID != zk.EventAttLog {
				t.Errorf("event with session field %d, want the flag %d", p.SessionID, zk.EventAttLog)
			}
		}
		if took := time.Since(punched); took < gap {
			t.Errorf("two events arrived within %v, want at least the %v gap between them", took, gap)
		}
	})
}

// TestRegistrationsCounted: Stats.Registrations counts CMD_REG_EVENT
// requests that register for events, not those that stop them, so tests
// can wait until a third-party client has registered before punching.
func TestRegistrationsCounted(t *testing.T) {
	dev := start(t, Config{})
	r := rawDial(t, dev, "tcp")
	r.connect()
	for i, mask := range [][]byte{{1, 0, 0, 0}, {0, 0, 0, 0}, {0xff, 0xff, 0, 0}} {
		r.expect(zk.CmdAckOK, r.send(zk.CmdRegEvent, mask))
		if got, want := dev.Stats().Registrations, []int{1, 1, 2}[i]; got != want {
			t.Errorf("after CMD_REG_EVENT % x: Registrations = %d, want %d", mask, got, want)
		}
	}
}
