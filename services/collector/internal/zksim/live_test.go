package zksim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// collect runs c.Events in the background and sends what it receives.
func collect(t *testing.T, ctx context.Context, c *zk.Client) (<-chan zk.Event, <-chan error) {
	t.Helper()
	evs := make(chan zk.Event, 64)
	done := make(chan error, 1)
	go func() {
		done <- c.Events(ctx, func(ev zk.Event, err error) error {
			if err != nil {
				return err
			}
			evs <- ev
			return nil
		})
	}()
	return evs, done
}

func receive(t *testing.T, evs <-chan zk.Event) zk.Event {
	t.Helper()
	select {
	case ev := <-evs:
		return ev
	case <-time.After(3 * time.Second):
		t.Fatal("no event within 3 s")
		return zk.Event{}
	}
}

// TestLiveEvents checks every event layout over both transports: the
// punch the device records arrives as an event with the same fields, and
// the client acknowledges it without the device answering the ack.
func TestLiveEvents(t *testing.T) {
	for _, tr := range transports() {
		for _, size := range zk.EventSizes {
			t.Run(fmt.Sprintf("%s/%d", tr.name, size), func(t *testing.T) {
				t.Parallel()
				dev := start(t, Config{EventSize: size})
				c := dial(t, dev, tr.opts...)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if err := c.RegisterEvents(ctx, uint32(zk.EventAttLog)); err != nil {
					t.Fatal(err)
				}
				evs, done := collect(t, ctx, c)
				for i, user := range []string{"1001", "1007"} {
					rec, err := dev.Punch(user, i, 15)
					if err != nil {
						t.Fatal(err)
					}
					ev := receive(t, evs)
					if ev.Flag != zk.EventAttLog || ev.UserID != rec.UserID || !ev.Time.Equal(rec.DeviceTime) || ev.State != rec.State || ev.VerifyMode != 15 || len(ev.Raw) != size {
						t.Errorf("event %+v, want the punch %+v in %d bytes", ev, rec, size)
					}
				}
				eventually(t, "the device sees both acks", func() bool { return dev.Stats().AcksReceived == 2 })
				cancel()
				if err := <-done; !errors.Is(err, context.Canceled) {
					t.Errorf("Events = %v, want context.Canceled", err)
				}
			})
		}
	}
}

// TestLiveEventsDuringCall: an event that arrives while another call waits
// for its reply is kept and delivered by the next Events.
func TestLiveEventsDuringCall(t *testing.T) {
	dev := start(t, Config{})
	c := dial(t, dev)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := c.RegisterEvents(ctx, uint32(zk.EventAttLog)); err != nil {
		t.Fatal(err)
	}
	rec, err := dev.Punch("1003", zk.StateCheckOut, 1)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the event is now ahead of the next reply
	if _, err := c.FreeSizes(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _ := collect(t, ctx, c)
	if ev := receive(t, evs); ev.UserID != rec.UserID || !ev.Time.Equal(rec.DeviceTime) {
		t.Errorf("event %+v, want %+v", ev, rec)
	}
}

// TestCaptureGenerator: with a punch rate the device produces live punches;
// Capture receives them, and each is in the log. Capture unregisters at the
// end, so later punches send no events.
func TestCaptureGenerator(t *testing.T) {
	dev := start(t, Config{Seed: 9, Records: 10, PunchInterval: 20 * time.Millisecond})
	c := dial(t, dev)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var got []zk.Event
	errEnough := errors.New("enough")
	err := c.Capture(ctx, uint32(zk.EventAttLog), func(ev zk.Event, err error) error {
		if err != nil {
			return err
		}
		if got = append(got, ev); len(got) == 5 {
			return errEnough
		}
		return nil
	})
	if !errors.Is(err, errEnough) {
		t.Fatalf("Capture = %v", err)
	}
	log := dev.Attendance()
	for _, ev := range got {
		if !slices.ContainsFunc(log, func(r zk.AttendanceRecord) bool {
			return r.UserID == ev.UserID && r.DeviceTime.Equal(ev.Time) && r.State == ev.State
		}) {
			t.Errorf("event %+v is not in the log", ev)
		}
	}
	sent := dev.Stats().EventsSent
	n := len(dev.Attendance())
	eventually(t, "more punches", func() bool { return len(dev.Attendance()) > n+3 })
	if after := dev.Stats().EventsSent; after != sent {
		t.Errorf("%d events sent after Capture unregistered", after-sent)
	}
}

// TestLiveEventsWhileDisabled: punches taken while the device is disabled
// reach the log and the event stream once it is enabled.
func TestLiveEventsWhileDisabled(t *testing.T) {
	dev := start(t, Config{})
	c := dial(t, dev)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := c.RegisterEvents(ctx, uint32(zk.EventAttLog)); err != nil {
		t.Fatal(err)
	}
	if err := c.Disable(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Punch("1002", zk.StateCheckIn, 1); err != nil {
		t.Fatal(err)
	}
	if n := dev.Stats().EventsSent; n != 0 {
		t.Fatalf("%d events while disabled", n)
	}
	if err := c.Enable(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _ := collect(t, ctx, c)
	if ev := receive(t, evs); ev.UserID != "1002" {
		t.Errorf("event %+v, want user 1002", ev)
	}
}
