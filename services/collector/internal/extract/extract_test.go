package extract_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/extract"
	"github.com/punchflow/punchflow/services/collector/internal/jstest"
	"github.com/punchflow/punchflow/services/collector/internal/publish"
)

// listSource is a source over an in-memory list of timed records: one
// record every step from start. It can fail the windows that reach past
// failFrom, and it repeats every tenth record (as an API repeating a record
// across pages does).
type listSource struct {
	name  string
	start time.Time
	step  time.Duration
	n     int

	mu       sync.Mutex
	failFrom time.Time
	calls    []extract.Window
}

func (s *listSource) Name() string    { return s.name }
func (s *listSource) Kind() string    { return "api" }
func (s *listSource) Address() string { return "mem://" + s.name }

func (s *listSource) Extract(ctx context.Context, w extract.Window, sink extract.Sink) error {
	s.mu.Lock()
	s.calls = append(s.calls, w)
	failFrom := s.failFrom
	s.mu.Unlock()
	for i := 0; i < s.n; i++ {
		at := s.start.Add(time.Duration(i) * s.step)
		if at.Before(w.From) || !at.Before(w.To) {
			continue
		}
		if !failFrom.IsZero() && !at.Before(failFrom) {
			return fmt.Errorf("%w: simulated outage at %s", extract.ErrUnavailable, at)
		}
		rec := proto.RawRecord{NaturalKey: fmt.Sprint("k", i), ObservedAt: &at, Payload: []byte(fmt.Sprintf(`{"k":%d}`, i))}
		for range 1 + boolInt(i%10 == 0) {
			if err := sink.Record(ctx, rec); err != nil {
				return err
			}
		}
	}
	if w.From.Equal(s.start) {
		if err := sink.Reject(ctx, extract.Reject{Body: []byte(`{"no":"key"}`), Reason: "record has no key field \"k\"", Where: "mem://page1", Index: 3}); err != nil {
			return err
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

var t0 = time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)

func deps(env *jstest.Env) extract.Deps {
	return extract.Deps{Pub: env.JS, DLQ: env.DLQ, Metrics: env.Metrics, Log: env.Log, Publish: publish.Options{Window: 16}}
}

func TestRunWindowPublishesOnceAndDeadLetters(t *testing.T) {
	env := jstest.Start(t, true)
	src := &listSource{name: "shop", start: t0, step: time.Minute, n: 100}
	w := extract.Window{From: t0, To: t0.Add(time.Hour)}
	st, err := extract.RunWindow(context.Background(), src, w, "run-1", deps(env))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(extract.Stats{Records: 60, Duplicates: 6, Rejected: 1}, st); diff != "" {
		t.Fatalf("stats (-want +got):\n%s", diff)
	}
	msgs := env.Msgs(t, "RAW", "")
	if len(msgs) != 60 {
		t.Fatalf("RAW holds %d, want 60", len(msgs))
	}
	r, err := proto.DecodeRawRecord(msgs[0].Data())
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].Subject() != "raw.record.shop" || msgs[0].Headers().Get(proto.HeaderMsgID) != r.ID || r.RunID != "run-1" ||
		r.ID != proto.RecordID("shop", "k0", []byte(`{"k":0}`)) || !r.ObservedAt.Equal(t0) {
		t.Fatalf("first record %s %+v", msgs[0].Subject(), r)
	}
	dl := env.Msgs(t, "DLQ", "")
	if len(dl) != 1 {
		t.Fatalf("DLQ holds %d", len(dl))
	}
	d, err := proto.DeadLetterFromHeader(dl[0].Headers())
	if err != nil {
		t.Fatal(err)
	}
	if string(dl[0].Data()) != `{"no":"key"}` || d.SourceFile != "mem://page1" || d.SourceLine != 3 || d.OriginalSubject != "raw.record.shop" || d.CorrelationID != "run-1" {
		t.Fatalf("dead letter %+v %s", d, dl[0].Data())
	}

	// The same window again (a retry, a rerun): nothing new lands.
	if _, err := extract.RunWindow(context.Background(), src, w, "run-2", deps(env)); err != nil {
		t.Fatal(err)
	}
	if n := env.Count(t, "RAW", ""); n != 60 {
		t.Fatalf("RAW holds %d after the rerun, want 60", n)
	}
	if n := env.Count(t, "DLQ", ""); n != 1 {
		t.Fatalf("DLQ holds %d after the rerun, want 1", n)
	}
}

func TestSourceErrorFailsTheWindow(t *testing.T) {
	env := jstest.Start(t, true)
	src := &listSource{name: "shop", start: t0, step: time.Minute, n: 100, failFrom: t0.Add(30 * time.Minute)}
	w := extract.Window{From: t0, To: t0.Add(time.Hour)}
	_, err := extract.RunWindow(context.Background(), src, w, "run-1", deps(env))
	if !errors.Is(err, extract.ErrUnavailable) || !strings.Contains(err.Error(), w.String()) {
		t.Fatalf("error %v", err)
	}
}

func TestAdvanceCursorOnlyMovesForward(t *testing.T) {
	env := jstest.Start(t, true)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 1; i <= 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := extract.AdvanceCursor(ctx, env.KV, "shop", t0.Add(time.Duration(i)*time.Hour), fmt.Sprint("run-", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	c, ok, err := extract.LoadCursor(ctx, env.KV, "shop")
	if err != nil || !ok || !c.Until.Equal(t0.Add(20*time.Hour)) || c.RunID != "run-20" {
		t.Fatalf("cursor %+v %v %v", c, ok, err)
	}
	moved, err := extract.AdvanceCursor(ctx, env.KV, "shop", t0, "late")
	if err != nil || moved {
		t.Fatalf("moved back: %v %v", moved, err)
	}
}

func TestScheduleWindows(t *testing.T) {
	now := time.Date(2025, 8, 10, 12, 0, 0, 500, time.UTC)
	s := extract.Schedule{Lookback: 10 * time.Minute, Delay: time.Minute, Initial: 2 * time.Hour, MaxWindow: time.Hour}
	cases := []struct {
		name   string
		cursor time.Time
		ok     bool
		want   []extract.Window
	}{
		{"no cursor reads Initial", time.Time{}, false, []extract.Window{
			{From: now.Add(-2*time.Hour - time.Minute).Truncate(time.Second), To: now.Add(-time.Hour - time.Minute).Truncate(time.Second)},
			{From: now.Add(-time.Hour - time.Minute).Truncate(time.Second), To: now.Add(-time.Minute).Truncate(time.Second)},
		}},
		{"cursor minus look-back", now.Add(-30 * time.Minute), true, []extract.Window{
			{From: now.Add(-40 * time.Minute), To: now.Add(-time.Minute).Truncate(time.Second)},
		}},
		{"caught up", now, true, []extract.Window{
			{From: now.Add(-10 * time.Minute), To: now.Add(-time.Minute).Truncate(time.Second)},
		}},
		{"cursor in the future", now.Add(time.Hour), true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, s.Windows(tc.cursor, tc.ok, now)); diff != "" {
				t.Fatalf("windows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIncrementalMovesTheCursorAndReportsHeartbeats(t *testing.T) {
	env := jstest.Start(t, true)
	ctx := context.Background()
	now := t0.Add(10 * time.Hour)
	src := &listSource{name: "shop", start: t0, step: 10 * time.Minute, n: 60, failFrom: t0.Add(5 * time.Hour)}
	d := deps(env)
	d.Now = func() time.Time { return now }
	inc := extract.NewIncremental(src, extract.Schedule{Initial: 10 * time.Hour, MaxWindow: 2 * time.Hour, Lookback: 30 * time.Minute}, env.KV, d, env.JS)

	// The first run reads two windows, then fails in the third: the cursor
	// stays at the end of the second.
	st, err := inc.RunOnce(ctx, "run-1")
	if !errors.Is(err, extract.ErrUnavailable) || st.Records < 24 {
		t.Fatalf("first run %+v, %v", st, err)
	}
	c, _, _ := extract.LoadCursor(ctx, env.KV, "shop")
	if !c.Until.Equal(t0.Add(4 * time.Hour)) {
		t.Fatalf("cursor %v after the failure, want %v", c.Until, t0.Add(4*time.Hour))
	}
	// The outage ends: the next run starts at the cursor minus the
	// look-back and catches up to now.
	src.mu.Lock()
	src.failFrom = time.Time{}
	src.calls = nil
	src.mu.Unlock()
	if _, err := inc.RunOnce(ctx, "run-2"); err != nil {
		t.Fatal(err)
	}
	if first := src.calls[0].From; !first.Equal(t0.Add(4*time.Hour - 30*time.Minute)) {
		t.Fatalf("second run started at %v", first)
	}
	c, _, _ = extract.LoadCursor(ctx, env.KV, "shop")
	if !c.Until.Equal(now) {
		t.Fatalf("cursor %v, want %v", c.Until, now)
	}
	if n := env.Count(t, "RAW", ""); n != 60 {
		t.Fatalf("RAW holds %d, want every record once (60)", n)
	}

	// Loop publishes a heartbeat per run; a cancelled loop returns nil.
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- inc.Loop(lctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for env.Count(t, "HEALTH", "") == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	hbs := env.Msgs(t, "HEALTH", "health.source.shop")
	if len(hbs) == 0 {
		t.Fatal("no heartbeat")
	}
	hb, err := proto.DecodeHeartbeat(hbs[0].Data())
	if err != nil {
		t.Fatal(err)
	}
	if hb.Kind != proto.HeartbeatSource || hb.Source != "shop" || !hb.Reachable || hb.Address != "mem://shop" || hb.ErrorClass != "" {
		t.Fatalf("heartbeat %+v", hb)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err       error
		class     string
		reachable bool
	}{
		{nil, "", true},
		{fmt.Errorf("x: %w", extract.ErrUnauthorized), proto.ErrorClassUnauthorized, true},
		{fmt.Errorf("x: %w", extract.ErrMalformed), proto.ErrorClassProtocol, true},
		{fmt.Errorf("x: %w", publish.ErrNotAcknowledged), proto.ErrorClassPublish, true},
		{fmt.Errorf("%w: %w", extract.ErrUnavailable, context.DeadlineExceeded), proto.ErrorClassTimeout, false},
		{fmt.Errorf("x: %w", extract.ErrUnavailable), proto.ErrorClassIO, true},
	}
	for _, tc := range cases {
		class, reachable := extract.Classify(tc.err)
		if class != tc.class || reachable != tc.reachable {
			t.Errorf("Classify(%v) = %q, %v; want %q, %v", tc.err, class, reachable, tc.class, tc.reachable)
		}
	}
}
