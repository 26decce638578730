package health

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/proto"
)

var t0 = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

func minute(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

// testThresholds poll every minute and go disconnected after three.
func testThresholds() Thresholds {
	th := Defaults()
	th.Interval = time.Minute
	th.DisconnectedAfter = 3
	th.SlowLatency = 800 * time.Millisecond
	th.SlowWindow = 10
	th.SlowFailureRatio = 0.3
	return th
}

// ok is a successful session; the options change it.
func ok(at time.Time, opts ...func(*proto.Heartbeat)) *proto.Heartbeat {
	hb := proto.NewHeartbeat(proto.Heartbeat{Source: "DEV1", Kind: proto.HeartbeatDevice, Site: "hq", RunID: at.Format(time.RFC3339Nano),
		ObservedAt: at, Reachable: true, LatencyMS: 40, Records: 1000, RecordCapacity: 100000, Users: 50})
	for _, o := range opts {
		o(&hb)
	}
	return &hb
}

func unreachable(hb *proto.Heartbeat) {
	hb.Reachable, hb.ErrorClass, hb.Error, hb.LatencyMS = false, proto.ErrorClassTimeout, "i/o timeout", 0
}
func badKey(hb *proto.Heartbeat) {
	hb.ErrorClass, hb.Error = proto.ErrorClassUnauthorized, "CMD_ACK_UNAUTH"
}
func latency(ms float64) func(*proto.Heartbeat) {
	return func(hb *proto.Heartbeat) { hb.LatencyMS = ms }
}
func used(share float64) func(*proto.Heartbeat) {
	return func(hb *proto.Heartbeat) {
		hb.RecordCapacity = 100000
		hb.Records = int(share * 100000)
		hb.CapacityUsed = share
	}
}
func offset(d time.Duration) func(*proto.Heartbeat) {
	return func(hb *proto.Heartbeat) { hb.ClockOffsetMS = d.Milliseconds() }
}

// step is a heartbeat (hb) or, when hb is nil, an evaluation at now.
type step struct {
	name      string
	hb        *proto.Heartbeat
	now       time.Time
	want      []string // "+cond@minute" raised, "-cond@minute" cleared
	wantState State
}

func render(trs []Transition) []string {
	var out []string
	for _, t := range trs {
		sign := "-"
		if t.Raised {
			sign = "+"
		}
		out = append(out, fmt.Sprintf("%s%s@%v", sign, t.Condition, t.At.Sub(t0)))
	}
	return out
}

func at(sign string, c State, m int) string {
	return fmt.Sprintf("%s%s@%v", sign, c, time.Duration(m)*time.Minute)
}

func run(t *testing.T, d Device, th Thresholds, steps []step) Device {
	t.Helper()
	for _, st := range steps {
		var trs []Transition
		if st.hb != nil {
			d, trs, _ = Observe(d, *st.hb, th)
		} else {
			d, trs, _ = Evaluate(d, st.now, th)
		}
		if diff := cmp.Diff(st.want, render(trs)); diff != "" {
			t.Fatalf("%s: transitions (-want +got):\n%s", st.name, diff)
		}
		if st.wantState != "" && d.State != st.wantState {
			t.Fatalf("%s: state = %s, want %s", st.name, d.State, st.wantState)
		}
	}
	return d
}

func TestDeviceStates(t *testing.T) {
	th := testThresholds()
	tests := []struct {
		name  string
		start Device
		steps []step
	}{
		{
			name:  "disconnected after three intervals without contact, dated at the deadline, cleared after two contacts",
			start: Device{Serial: "DEV1"},
			steps: []step{
				{name: "first contact", hb: ok(minute(0)), wantState: Online},
				{name: "one miss", hb: ok(minute(1), unreachable), wantState: Online},
				{name: "still inside the window", now: minute(2).Add(59 * time.Second), wantState: Online},
				{name: "evaluation after the deadline", now: minute(3).Add(10 * time.Second), want: []string{at("+", Disconnected, 3)}, wantState: Disconnected},
				{name: "evaluating again raises nothing", now: minute(5), wantState: Disconnected},
				{name: "miss while disconnected", hb: ok(minute(6), unreachable), wantState: Disconnected},
				{name: "first contact back is not enough", hb: ok(minute(7)), wantState: Disconnected},
				{name: "a miss breaks the streak", hb: ok(minute(8), unreachable), wantState: Disconnected},
				{name: "contact again", hb: ok(minute(9)), wantState: Disconnected},
				{name: "second contact in a row clears", hb: ok(minute(10)), want: []string{at("-", Disconnected, 10)}, wantState: Online},
			},
		},
		{
			name:  "a heartbeat past the deadline raises disconnected by itself",
			start: Device{Serial: "DEV1"},
			steps: []step{
				{name: "contact", hb: ok(minute(0))},
				{name: "miss", hb: ok(minute(1), unreachable)},
				{name: "miss", hb: ok(minute(2), unreachable)},
				{name: "miss at the deadline", hb: ok(minute(3), unreachable), want: []string{at("+", Disconnected, 3)}, wantState: Disconnected},
			},
		},
		{
			name:  "a flapping device raises slow once and never disconnected",
			start: Device{Serial: "DEV1"},
			steps: func() []step {
				var s []step
				for i := range 40 {
					hb := ok(minute(i))
					if i%2 == 1 {
						hb = ok(minute(i), unreachable)
					}
					var want []string
					if i == 6 { // fourth contact: 3 of 6 failed > 30%, the second slow verdict in a row
						want = []string{at("+", Slow, 6)}
					}
					s = append(s, step{name: fmt.Sprintf("flap %d", i), hb: hb, want: want})
					s = append(s, step{name: fmt.Sprintf("evaluate %d", i), now: minute(i).Add(30 * time.Second)})
				}
				return s
			}(),
		},
		{
			name:  "never seen is raised after the window and cleared by the first heartbeat",
			start: New("DEV1", t0),
			steps: []step{
				{name: "inside the window", now: minute(2), wantState: NeverSeen},
				{name: "window over", now: minute(4), want: []string{at("+", NeverSeen, 3)}, wantState: NeverSeen},
				{name: "raised once", now: minute(9), wantState: NeverSeen},
				{name: "first heartbeat", hb: ok(minute(10)), want: []string{at("-", NeverSeen, 10)}, wantState: Online},
			},
		},
		{
			name:  "a configured device never reached goes disconnected, not never seen, once heartbeats arrive",
			start: New("DEV1", t0),
			steps: []step{
				{name: "unreachable", hb: ok(minute(1), unreachable), wantState: Online},
				{name: "still within", now: minute(3), wantState: Online},
				{name: "window from first heartbeat", now: minute(4), want: []string{at("+", Disconnected, 4)}, wantState: Disconnected},
			},
		},
		{
			name:  "unauthorized after two rejections; reachable so never disconnected; cleared after two good sessions",
			start: Device{Serial: "DEV1"},
			steps: []step{
				{name: "good", hb: ok(minute(0))},
				{name: "rejected once", hb: ok(minute(1), badKey), wantState: Online},
				{name: "rejected twice", hb: ok(minute(2), badKey), want: []string{at("+", Unauthorized, 2)}, wantState: Unauthorized},
				{name: "rejected for long", hb: ok(minute(30), badKey), wantState: Unauthorized},
				{name: "evaluate", now: minute(31), wantState: Unauthorized},
				{name: "key fixed", hb: ok(minute(32)), wantState: Unauthorized},
				{name: "key fixed twice", hb: ok(minute(33)), want: []string{at("-", Unauthorized, 33)}, wantState: Online},
			},
		},
		{
			name:  "storage nearly full with a band against flapping",
			start: Device{Serial: "DEV1"},
			steps: []step{
				{name: "91%", hb: ok(minute(0), used(0.91))},
				{name: "92%", hb: ok(minute(1), used(0.92)), want: []string{at("+", StorageFull, 1)}, wantState: StorageFull},
				{name: "87% in the band", hb: ok(minute(2), used(0.87)), wantState: StorageFull},
				{name: "84%", hb: ok(minute(3), used(0.84)), wantState: StorageFull},
				{name: "89% in the band breaks the streak", hb: ok(minute(4), used(0.89)), wantState: StorageFull},
				{name: "80%", hb: ok(minute(5), used(0.80))},
				{name: "70%", hb: ok(minute(6), used(0.70)), want: []string{at("-", StorageFull, 6)}, wantState: Online},
			},
		},
		{
			name:  "clock drift either way",
			start: Device{Serial: "DEV1"},
			steps: []step{
				{name: "+150s", hb: ok(minute(0), offset(150*time.Second))},
				{name: "-130s", hb: ok(minute(1), offset(-130*time.Second)), want: []string{at("+", ClockDrift, 1)}, wantState: ClockDrift},
				{name: "90s in the band", hb: ok(minute(2), offset(90*time.Second)), wantState: ClockDrift},
				{name: "10s", hb: ok(minute(3), offset(10*time.Second))},
				{name: "0s", hb: ok(minute(4)), want: []string{at("-", ClockDrift, 4)}, wantState: Online},
			},
		},
		{
			name:  "slow by latency, and the most severe condition is the state",
			start: Device{Serial: "DEV1"},
			steps: []step{
				{name: "slow 1", hb: ok(minute(0), latency(1500))},
				{name: "slow 2", hb: ok(minute(1), latency(1500)), want: []string{at("+", Slow, 1)}, wantState: Slow},
				{name: "slow and full", hb: ok(minute(2), latency(1500), used(0.95))},
				{name: "full twice", hb: ok(minute(3), latency(1500), used(0.95)), want: []string{at("+", StorageFull, 3)}, wantState: StorageFull},
				{name: "fast", hb: ok(minute(4), used(0.95))},
				{name: "fast twice", hb: ok(minute(5), used(0.95)), want: []string{at("-", Slow, 5)}, wantState: StorageFull},
			},
		},
		{
			name:  "a stale or repeated heartbeat changes nothing",
			start: Device{Serial: "DEV1"},
			steps: []step{
				{name: "good", hb: ok(minute(5))},
				{name: "older bad", hb: ok(minute(4), badKey)},
				{name: "same time bad", hb: ok(minute(5), badKey)},
				{name: "newer bad", hb: ok(minute(6), badKey), wantState: Online},
			},
		},
		{
			name:  "recovering from disconnected does not turn into slow",
			start: Device{Serial: "DEV1"},
			steps: func() []step {
				s := []step{{name: "contact", hb: ok(minute(0))}}
				for i := 1; i <= 8; i++ {
					var want []string
					if i == 3 {
						want = []string{at("+", Disconnected, 3)}
					}
					s = append(s, step{name: fmt.Sprintf("miss %d", i), hb: ok(minute(i), unreachable), want: want})
				}
				return append(s,
					step{name: "back 1", hb: ok(minute(9)), wantState: Disconnected},
					step{name: "back 2", hb: ok(minute(10)), want: []string{at("-", Disconnected, 10)}, wantState: Online},
					step{name: "back 3", hb: ok(minute(11)), wantState: Online},
					step{name: "back 4", hb: ok(minute(12)), wantState: Online},
				)
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, tt.start, th, tt.steps) })
	}
}

func TestTransitionsAreDeterministicAcrossEvaluators(t *testing.T) {
	th := testThresholds()
	d, _, _ := Observe(Device{Serial: "DEV1"}, *ok(minute(0)), th)
	// Two replicas evaluating at different moments agree on the transition.
	_, a, _ := Evaluate(d, minute(3).Add(time.Second), th)
	_, b, _ := Evaluate(d, minute(7), th)
	if len(a) != 1 || len(b) != 1 || !a[0].At.Equal(b[0].At) || a[0].Condition != b[0].Condition {
		t.Fatalf("replicas disagree: %v vs %v", a, b)
	}
}

func TestObserveDoesNotModifyItsInput(t *testing.T) {
	th := testThresholds()
	d, _, _ := Observe(Device{Serial: "DEV1"}, *ok(minute(0), used(0.95)), th)
	before := d.clone()
	_, _, _ = Observe(d, *ok(minute(1), used(0.95)), th)
	_, _, _ = Evaluate(d, minute(60), th)
	if diff := cmp.Diff(before, d); diff != "" {
		t.Fatalf("input changed (-before +after):\n%s", diff)
	}
}

func TestHistory(t *testing.T) {
	th := testThresholds()
	th.RaiseAfter, th.ClearAfter = 1, 1
	d := Device{Serial: "DEV1"}
	start := t0
	// Ten days, storage crossing the threshold every 6 hours.
	var last time.Time
	for h := 0; h <= 240; h++ {
		last = start.Add(time.Duration(h) * time.Hour)
		share := 0.5
		if (h/6)%2 == 1 {
			share = 0.95
		}
		d, _, _ = Observe(d, *ok(last, used(share)), th)
	}
	if got := d.History[0].From; got.After(last.Add(-HistoryKeep)) {
		t.Fatalf("history starts at %v, after the cut %v: the span in force at the cut was dropped", got, last.Add(-HistoryKeep))
	}
	if got := d.History[1].From; !got.After(last.Add(-HistoryKeep)) {
		t.Fatalf("history keeps %v, older than needed", got)
	}
	for i := 1; i < len(d.History); i++ {
		if d.History[i].From.Before(d.History[i-1].From) || d.History[i].State == d.History[i-1].State {
			t.Fatalf("history not ordered or not compact at %d: %v", i, d.History[i-1:i+1])
		}
	}
	if d.History[len(d.History)-1].State != d.State {
		t.Fatalf("last span %v is not the state %v", d.History[len(d.History)-1], d.State)
	}
}

func TestHistoryOfABacklogStartsAtTheFirstHeartbeat(t *testing.T) {
	th := testThresholds()
	// Configured at minute 60; its heartbeats from minute 0 are read later.
	d := New("DEV1", minute(60))
	d, _, _ = Observe(d, *ok(minute(0)), th)
	d, _, _ = Observe(d, *ok(minute(1), used(0.95)), th)
	d, _, _ = Observe(d, *ok(minute(2), used(0.95)), th)
	want := []Span{{State: Online, From: minute(0)}, {State: StorageFull, From: minute(2)}}
	if diff := cmp.Diff(want, d.History); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if !d.KnownSince.Equal(minute(0)) {
		t.Errorf("KnownSince = %v", d.KnownSince)
	}
	// A configured device seen after its configuration keeps its
	// never-seen stretch.
	d = New("DEV2", minute(0))
	d, _, _ = Observe(d, *ok(minute(5)), th)
	want = []Span{{State: NeverSeen, From: minute(0)}, {State: Online, From: minute(5)}}
	if diff := cmp.Diff(want, d.History); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

func TestSyncAccounting(t *testing.T) {
	th := testThresholds()
	d, _, _ := Observe(Device{Serial: "DEV1"}, *ok(minute(0)), th) // 1000 records, synced
	if d.RecordsWaiting() != 0 || d.Unsynced(minute(30), time.Hour) {
		t.Fatalf("fresh sync: waiting %d unsynced %v", d.RecordsWaiting(), d.Unsynced(minute(30), time.Hour))
	}
	// A session that reached the device, saw 1200 records and failed
	// part-way leaves 200 waiting.
	d, _, _ = Observe(d, *ok(minute(1), func(hb *proto.Heartbeat) { hb.Records, hb.ErrorClass = 1200, proto.ErrorClassProtocol }), th)
	if d.RecordsWaiting() != 200 || !d.Unsynced(minute(2), time.Hour) {
		t.Fatalf("partial: waiting %d unsynced %v", d.RecordsWaiting(), d.Unsynced(minute(2), time.Hour))
	}
	if !d.LastSyncAt.Equal(minute(0)) {
		t.Fatalf("last sync = %v, want the first session", d.LastSyncAt)
	}
	d, _, _ = Observe(d, *ok(minute(2), func(hb *proto.Heartbeat) { hb.Records = 1200 }), th)
	if d.RecordsWaiting() != 0 || d.Unsynced(minute(3), time.Hour) || !d.Unsynced(minute(63), time.Hour) {
		t.Fatalf("synced again: waiting %d", d.RecordsWaiting())
	}
	// A session that read everything but dead-lettered undecodable records
	// is a sync.
	d, _, _ = Observe(d, *ok(minute(3), func(hb *proto.Heartbeat) {
		hb.Records, hb.ErrorClass, hb.RecordsRejected = 1300, proto.ErrorClassProtocol, 2
	}), th)
	if !d.LastSyncAt.Equal(minute(3)) || d.RecordsWaiting() != 0 {
		t.Fatalf("dead-lettered records: last sync %v waiting %d", d.LastSyncAt, d.RecordsWaiting())
	}
	if !(Device{}).Unsynced(minute(0), time.Hour) {
		t.Fatal("a device never synced is unsynced")
	}
}

func TestThresholdsValidate(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := Defaults()
	bad.Interval = 0
	bad.StorageClear = 0.95
	bad.SlowWindow = 100
	err := bad.Validate()
	for _, want := range []string{"interval", "storage_clear", "slow_window"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
}

func TestHuman(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{250 * time.Millisecond, "250ms"},
		{1500 * time.Millisecond, "1.5s"},
		{45 * time.Second, "45s"},
		{12 * time.Minute, "12m"},
		{12*time.Minute + 5*time.Second, "12m 5s"},
		{3*time.Hour + 5*time.Minute, "3h 5m"},
		{50 * time.Hour, "2d 2h"},
		{-2 * time.Minute, "2m"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := Human(tt.in); got != tt.want {
				t.Errorf("Human(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestStateOrder(t *testing.T) {
	if got := Conditions(); len(got) != 6 || got[0] != NeverSeen || got[5] != Slow {
		t.Fatalf("Conditions() = %v", got)
	}
	if !Unauthorized.Valid() || State("asleep").Valid() {
		t.Fatal("Valid")
	}
	if Disconnected.Severity() >= Slow.Severity() || Online.Severity() != 6 {
		t.Fatal("Severity")
	}
}
