package fleet

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/zk"
	"github.com/punchflow/punchflow/services/collector/internal/zksim"
)

// syncOnce runs one SyncOnce and fails the test on an error.
func syncOnce(t *testing.T, f *Fleet) Summary {
	t.Helper()
	sum, err := f.SyncOnce(testContext(t, 30*time.Second))
	if err != nil {
		t.Fatalf("SyncOnce: %v", err)
	}
	return sum
}

// TestPollPublishesWhatIsNew: the first poll publishes the whole log with
// the contract's headers and the measured clock offset; later polls publish
// only punches that arrived since; the heartbeat reports the session.
func TestPollPublishesWhatIsNew(t *testing.T) {
	e := newEnv(t)
	dev, d := sim(t, zksim.Config{Seed: 11, Records: 3000, Faults: zksim.Faults{ClockSkew: 90 * time.Second, DuplicatePunches: 5}})
	d.CommKey = NewCommKey(0, "test") // a key the device does not need is harmless
	f := e.fleet(Config{}, d)

	if sum := syncOnce(t, f); sum.Published != 3000 || sum.Rejected != 0 || sum.Failed != 0 {
		t.Fatalf("first poll: %+v, want 3000 published (5 of them duplicates JetStream drops)", sum)
	}
	got := e.punches(d.Serial)
	if diff := cmp.Diff(wantIDs(d.Serial, dev), ids(got)); diff != "" {
		t.Fatalf("punches in RAW (-want +got):\n%s", diff)
	}
	msgs := e.messages(e.topo.RawStream, "raw.punch.hq."+d.Serial)
	m := msgs[0]
	runID := m.Headers().Get(proto.HeaderCorrelationID)
	for k, want := range map[string]string{proto.HeaderMsgID: got[0].ID, proto.HeaderType: proto.KindRawPunch, proto.HeaderSchemaVersion: proto.SchemaVersion} {
		if v := m.Headers().Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if len(m.Headers().Get(proto.HeaderTraceparent)) != 55 || runID == "" {
		t.Errorf("traceparent %q, correlation id %q", m.Headers().Get(proto.HeaderTraceparent), runID)
	}
	p := got[0]
	if p.Source != "zk:"+d.Serial || p.SourceKind != "zk_tcp" || p.Site != "hq" || p.DeviceTimeZone != "UTC" || p.RunID != runID {
		t.Errorf("punch %+v", p)
	}
	if p.ClockOffsetMS == nil || *p.ClockOffsetMS < 88_000 || *p.ClockOffsetMS > 92_000 {
		t.Errorf("clock_offset_ms = %v, want about 90000 (the device runs 90 s fast)", p.ClockOffsetMS)
	}
	if st := e.state(d.Serial); st.Checkpoint.Count != 3000 || st.Checkpoint.RecordSize != 40 {
		t.Errorf("checkpoint %+v, want 3000 records of 40 bytes", st.Checkpoint)
	}

	for _, u := range []string{"1001", "1002", "1003"} {
		if _, err := dev.Punch(u, zk.StateCheckIn, 1); err != nil {
			t.Fatal(err)
		}
	}
	if sum := syncOnce(t, f); sum.Published != 3 {
		t.Fatalf("second poll published %d, want the 3 new punches", sum.Published)
	}
	if sum := syncOnce(t, f); sum.Published != 0 {
		t.Fatalf("third poll published %d, want none", sum.Published)
	}
	if n := len(e.punches(d.Serial)); n != len(wantIDs(d.Serial, dev)) {
		t.Errorf("RAW holds %d punches, the device %d distinct", n, len(wantIDs(d.Serial, dev)))
	}
	hbs := e.heartbeats(d.Serial)
	if len(hbs) != 3 {
		t.Fatalf("%d heartbeats, want one per session", len(hbs))
	}
	hb := hbs[0]
	if hb.RunID != runID || !hb.Reachable || hb.ErrorClass != "" || hb.Records != 3000 || hb.Users != 20 || hb.RecordCapacity != 100_000 ||
		hb.CapacityUsed != 0.03 || hb.Firmware == "" || hb.Platform != "ZEM760_TFT" || hb.RecordsPublished != 3000 || hb.LatencyMS <= 0 ||
		hb.ClockOffsetMS < 88_000 || hb.ClockOffsetMS > 92_000 || hb.Address != dev.Addr() || hb.Site != "hq" {
		t.Errorf("first heartbeat %+v", hb)
	}
	if hbs[1].RecordsPublished != 3 || hbs[1].Records != 3003 || hbs[2].RecordsPublished != 0 {
		t.Errorf("later heartbeats %+v / %+v", hbs[1], hbs[2])
	}
	if !dev.Enabled() {
		t.Error("device left disabled")
	}
	if st := dev.Stats(); st.Disables != 3 || st.Enables != 3 {
		t.Errorf("device stats %+v: want 3 disables and 3 enables", st)
	}
}

// TestPollCheckpointSurvives: the checkpoint stays right when the device's
// log is cleared (the count drops), cleared and refilled beyond the old
// count, or when the device clock jumps back or forward.
func TestPollCheckpointSurvives(t *testing.T) {
	clear := func(t *testing.T, dev *zksim.Device) {
		c, err := zk.Dial(testContext(t, 5*time.Second), dev.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.ClearAttendance(testContext(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	setClock := func(t *testing.T, dev *zksim.Device, by time.Duration) {
		c, err := zk.Dial(testContext(t, 5*time.Second), dev.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.SetTime(testContext(t, 5*time.Second), dev.Now().Add(by)); err != nil {
			t.Fatal(err)
		}
	}
	punch := func(t *testing.T, dev *zksim.Device, n int) {
		for i := range n {
			if _, err := dev.Punch(proto.Token([]string{"1001", "1002", "1003", "1004"}[i%4]), i%2, 1); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	tests := []struct {
		name   string
		change func(t *testing.T, dev *zksim.Device)
		want   int // punches the second poll publishes (new ones, or all again)
	}{
		{"log cleared, two punches", func(t *testing.T, dev *zksim.Device) { clear(t, dev); punch(t, dev, 2) }, 2},
		{"log cleared, refilled past the old count", func(t *testing.T, dev *zksim.Device) {
			clear(t, dev)
			setClock(t, dev, -400*24*time.Hour) // distinct times from the first punches
			punch(t, dev, 4)
		}, 4},
		{"clock jumped back a year", func(t *testing.T, dev *zksim.Device) { setClock(t, dev, -365*24*time.Hour); punch(t, dev, 3) }, 3},
		{"clock jumped forward a day", func(t *testing.T, dev *zksim.Device) { setClock(t, dev, 24*time.Hour); punch(t, dev, 2) }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			dev, d := sim(t, zksim.Config{Seed: 12, Records: 3})
			f := e.fleet(Config{}, d)
			if sum := syncOnce(t, f); sum.Published != 3 {
				t.Fatalf("first poll published %d, want 3", sum.Published)
			}
			tt.change(t, dev)
			if sum := syncOnce(t, f); sum.Published != tt.want {
				t.Errorf("second poll published %d, want %d", sum.Published, tt.want)
			}
			// Everything the device holds now is in RAW, nothing is lost.
			got := ids(e.punches(d.Serial))
			for _, id := range wantIDs(d.Serial, dev) {
				if _, found := slices.BinarySearch(got, id); !found {
					t.Errorf("punch %s of the device is not in RAW", id)
				}
			}
			if sum := syncOnce(t, f); sum.Published != 0 {
				t.Errorf("third poll published %d, want none", sum.Published)
			}
		})
	}
}

// TestPollDeadLettersBadRecords: records that do not decode go to the DLQ
// with their raw bytes and the reason, once; the others are published; the
// heartbeat says so.
func TestPollDeadLettersBadRecords(t *testing.T) {
	e := newEnv(t)
	dev, d := sim(t, zksim.Config{Seed: 13, Records: 200, Faults: zksim.Faults{CorruptRecords: []int{3, 150, 199}, GarbageBytes: 7}})
	f := e.fleet(Config{}, d)
	if sum := syncOnce(t, f); sum.Published != 197 || sum.Rejected != 4 {
		t.Fatalf("poll: %+v, want 197 published and 4 rejected (3 records, 1 trailing junk)", sum)
	}
	dls := e.messages(e.topo.DLQStream, ">")
	if len(dls) != 4 {
		t.Fatalf("%d dead letters, want 4", len(dls))
	}
	att := dev.Attendance()
	wantRaw := [][]byte{att[3].Raw, att[150].Raw, att[199].Raw, {0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE}}
	for i, m := range dls {
		dl, err := proto.DeadLetterFromHeader(m.Headers())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m.Data(), wantRaw[i]) {
			t.Errorf("dead letter %d body % x, want the raw bytes % x", i, m.Data(), wantRaw[i])
		}
		if dl.Stage != proto.StageCollect || dl.OriginalSubject != "raw.punch.hq."+d.Serial || dl.Reason == "" || dl.MsgID == "" {
			t.Errorf("dead letter %d: %+v", i, dl)
		}
	}
	if dl, _ := proto.DeadLetterFromHeader(dls[0].Headers()); dl.ReasonCode != proto.ReasonInvalid || dl.SourceLine != 4 {
		t.Errorf("corrupt record: code %q line %d, want invalid and line 4 (record 3)", dl.ReasonCode, dl.SourceLine)
	}
	if dl, _ := proto.DeadLetterFromHeader(dls[3].Headers()); dl.ReasonCode != proto.ReasonDecode {
		t.Errorf("trailing junk: code %q, want decode", dl.ReasonCode)
	}
	if hb := e.heartbeats(d.Serial)[0]; hb.ErrorClass != proto.ErrorClassProtocol || hb.RecordsRejected != 4 || !hb.Reachable {
		t.Errorf("heartbeat %+v, want class protocol with 4 rejected", hb)
	}
	if sum := syncOnce(t, f); sum.Published != 0 || sum.Rejected != 0 {
		t.Errorf("second poll: %+v, want nothing new (bad records are dead-lettered once)", sum)
	}
	if n := len(e.messages(e.topo.DLQStream, ">")); n != 4 {
		t.Errorf("%d dead letters after the second poll, want still 4", n)
	}
}

// TestClearAfterRead: with clear_after_read the log is cleared only after
// every record read was acknowledged by JetStream; when publishing fails the
// log stays, and the device is enabled again either way.
func TestClearAfterRead(t *testing.T) {
	t.Run("stored, then cleared", func(t *testing.T) {
		e := newEnv(t)
		dev, d := sim(t, zksim.Config{Seed: 14, Records: 500, Faults: zksim.Faults{CorruptRecords: []int{7}}})
		d.ClearAfterRead = true
		want := wantIDs(d.Serial, dev)
		want = slices.DeleteFunc(want, func(id string) bool { return id == punchID(d.Serial, &dev.Attendance()[7]) })
		f := e.fleet(Config{}, d)
		if sum := syncOnce(t, f); sum.Published != 499 || sum.Rejected != 1 {
			t.Fatalf("poll: %+v", sum)
		}
		if n := len(dev.Attendance()); n != 0 {
			t.Errorf("device holds %d records after the poll, want a cleared log", n)
		}
		if diff := cmp.Diff(want, ids(e.punches(d.Serial))); diff != "" {
			t.Errorf("RAW (-want +got):\n%s", diff)
		}
		if st := e.state(d.Serial); st.Checkpoint.Count != 0 {
			t.Errorf("checkpoint after clearing: %+v, want empty", st.Checkpoint)
		}
		if _, err := dev.Punch("1001", zk.StateCheckOut, 1); err != nil {
			t.Fatal(err)
		}
		if sum := syncOnce(t, f); sum.Published != 1 {
			t.Errorf("poll after a new punch published %d, want 1", sum.Published)
		}
		if !dev.Enabled() {
			t.Error("device left disabled")
		}
	})
	t.Run("not stored, not cleared", func(t *testing.T) {
		e := newEnv(t)
		dev, d := sim(t, zksim.Config{Seed: 15, Records: 500})
		d.ClearAfterRead = true
		if err := e.js.DeleteStream(testContext(t, 5*time.Second), e.topo.RawStream); err != nil {
			t.Fatal(err)
		}
		f := e.fleet(Config{PublishRetry: 300 * time.Millisecond}, d)
		_, err := f.SyncOnce(testContext(t, 30*time.Second))
		if err == nil {
			t.Fatal("SyncOnce succeeded without a raw stream")
		}
		if n := len(dev.Attendance()); n != 500 {
			t.Errorf("device holds %d records, want all 500: nothing was stored, so nothing may be cleared", n)
		}
		if !dev.Enabled() {
			t.Error("device left disabled")
		}
		if hb := e.heartbeats(d.Serial); len(hb) != 1 || hb[0].ErrorClass != proto.ErrorClassPublish {
			t.Errorf("heartbeats %+v, want one of class publish", hb)
		}
	})
}

// TestUnauthorized: a wrong comm key is reported once, with its own
// heartbeat class, and not retried: the breaker opens and the next run does
// not even connect. A changed key closes the breaker at once.
func TestUnauthorized(t *testing.T) {
	e := newEnv(t)
	dev, d := sim(t, zksim.Config{Seed: 16, Records: 10, CommKey: 4711})
	d.CommKey = NewCommKey(4712, "test")
	f := e.fleet(Config{DialRetries: 3}, d)
	_, err := f.SyncOnce(testContext(t, 10*time.Second))
	if !errors.Is(err, zk.ErrUnauthorized) {
		t.Fatalf("SyncOnce = %v, want ErrUnauthorized", err)
	}
	if s := dev.Stats().Sessions; s != 1 {
		t.Errorf("%d sessions, want 1: a refused key is not retried", s)
	}
	hbs := e.heartbeats(d.Serial)
	if len(hbs) != 1 || hbs[0].ErrorClass != proto.ErrorClassUnauthorized || !hbs[0].Reachable {
		t.Fatalf("heartbeats %+v, want one, reachable, class unauthorized", hbs)
	}
	st := e.state(d.Serial)
	if st.Breaker.LastClass != proto.ErrorClassUnauthorized || !st.Breaker.Open(time.Now().Add(50*time.Minute)) {
		t.Errorf("breaker %+v, want open for the unauthorized cooldown", st.Breaker)
	}
	if _, err := f.SyncOnce(testContext(t, 10*time.Second)); err == nil {
		t.Error("second SyncOnce succeeded with the breaker open")
	}
	if s := dev.Stats().Sessions; s != 1 {
		t.Errorf("%d sessions after the second run, want still 1 (breaker open)", s)
	}
	d.CommKey = NewCommKey(4711, "test")
	if sum := syncOnce(t, e.fleet(Config{}, d)); sum.Published != 10 {
		t.Errorf("with the right key: published %d, want 10", sum.Published)
	}
	if st := e.state(d.Serial); st.Breaker != (Breaker{}) {
		t.Errorf("breaker after success %+v, want closed", st.Breaker)
	}
}

// TestFailuresAndBreaker: unreachable devices, a transfer cut midway and a
// device that answers with another serial each fail with their class; the
// device is never left disabled, and consecutive failures open the breaker.
func TestFailuresAndBreaker(t *testing.T) {
	tests := []struct {
		name      string
		cfg       zksim.Config
		edit      func(*Device)
		wantClass string
		reachable bool
	}{
		{"refused", zksim.Config{Seed: 17, Faults: zksim.Faults{RefuseConnect: true}}, nil, proto.ErrorClassRefused, false},
		{"no answer", zksim.Config{Seed: 18, Faults: zksim.Faults{IgnoreConnect: true}}, nil, proto.ErrorClassTimeout, false},
		{"reset mid-chunk", zksim.Config{Seed: 19, Records: 5000, Faults: zksim.Faults{ResetOnChunk: 2}}, nil, proto.ErrorClassIO, true},
		{"another device at the address", zksim.Config{Seed: 20}, func(d *Device) { d.Serial = "OTHER" }, proto.ErrorClassProtocol, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			dev, d := sim(t, tt.cfg)
			if tt.edit != nil {
				tt.edit(&d)
			}
			f := e.fleet(Config{Timeout: 200 * time.Millisecond, DialRetries: -1}, d)
			_, err := f.SyncOnce(testContext(t, 10*time.Second))
			if err == nil {
				t.Fatal("SyncOnce succeeded")
			}
			hbs := e.heartbeats(d.Serial)
			if len(hbs) != 1 || hbs[0].ErrorClass != tt.wantClass || hbs[0].Reachable != tt.reachable || hbs[0].Error == "" {
				t.Fatalf("heartbeats %+v, want one of class %s, reachable %v", hbs, tt.wantClass, tt.reachable)
			}
			if !dev.Enabled() {
				t.Error("device left disabled")
			}
			if st := e.state(d.Serial); st.Breaker.Failures != 1 || st.Breaker.LastClass != tt.wantClass || st.Breaker.Open(time.Now()) {
				t.Errorf("breaker %+v, want one failure, still closed", st.Breaker)
			}
		})
	}
	t.Run("breaker opens", func(t *testing.T) {
		e := newEnv(t)
		dev, d := sim(t, zksim.Config{Seed: 21, Faults: zksim.Faults{RefuseConnect: true}})
		f := e.fleet(Config{DialRetries: -1}, d) // 3 failures open it
		for range 3 {
			_, _ = f.SyncOnce(testContext(t, 10*time.Second))
		}
		st := e.state(d.Serial)
		if !st.Breaker.Open(time.Now()) || st.Breaker.Failures != 3 {
			t.Fatalf("breaker %+v, want open after 3 failures", st.Breaker)
		}
		before := dev.Stats().Connections
		_, _ = f.SyncOnce(testContext(t, 10*time.Second))
		if after := dev.Stats().Connections; after != before {
			t.Errorf("connections %d → %d: an open breaker must not connect", before, after)
		}
	})
}

// TestPollLayoutsAndTransports: every record layout, over TCP and UDP, ends
// up in RAW with the device's user ids.
func TestPollLayoutsAndTransports(t *testing.T) {
	tests := []struct {
		name string
		cfg  zksim.Config
		udp  bool
	}{
		{"40-byte over tcp", zksim.Config{Seed: 81, Records: 1200}, false},
		{"49-byte over udp", zksim.Config{Seed: 82, Records: 1200, RecordSize: 49}, true},
		{"16-byte, 28-byte users, over udp", zksim.Config{Seed: 83, Records: 1200, RecordSize: 16, UserSize: 28}, true},
		{"8-byte over tcp", zksim.Config{Seed: 84, Records: 1200, RecordSize: 8, UserSize: 28}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			dev, d := sim(t, tt.cfg)
			d.UDP = tt.udp
			if sum := syncOnce(t, e.fleet(Config{}, d)); sum.Published != 1200 {
				t.Fatalf("published %d, want 1200", sum.Published)
			}
			got := e.punches(d.Serial)
			if diff := cmp.Diff(wantIDs(d.Serial, dev), ids(got)); diff != "" {
				t.Errorf("RAW (-want +got):\n%s", diff)
			}
			kind := "zk_tcp"
			if tt.udp {
				kind = "zk_udp"
			}
			for _, p := range got {
				if p.SourceKind != kind || p.UserID == "" {
					t.Fatalf("punch %+v, want source kind %s and a user id", p, kind)
				}
			}
			if st := e.state(d.Serial); st.Checkpoint.RecordSize != dev.Config().RecordSize {
				t.Errorf("checkpoint record size %d, want %d", st.Checkpoint.RecordSize, dev.Config().RecordSize)
			}
		})
	}
}
