package extract

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/publish"
)

// Schedule says how the live loop reads a source. Zero values select the
// defaults named.
type Schedule struct {
	// Interval is the time between two runs (default 1 min).
	Interval time.Duration
	// Lookback is how far before the cursor each run starts reading again,
	// for records that appear late with an older timestamp (a transaction
	// committed late, an API that indexes slowly). Re-read records carry the
	// same id and are dropped as duplicates (default 5 min).
	Lookback time.Duration
	// Delay keeps the newest Delay out of a run: the window ends at
	// now − Delay (default 0).
	Delay time.Duration
	// Initial is how far back the first run reads when the source has no
	// cursor yet (default 24 h). A backfill sets the cursor for older data.
	Initial time.Duration
	// MaxWindow splits a long catch-up into windows of at most this length,
	// each committed to the cursor on its own (default 24 h).
	MaxWindow time.Duration
}

// WithDefaults returns s with the defaults filled in.
func (s Schedule) WithDefaults() Schedule {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&s.Interval, time.Minute)
	if s.Lookback == 0 {
		s.Lookback = 5 * time.Minute
	}
	if s.Lookback < 0 {
		s.Lookback = 0
	}
	if s.Delay < 0 {
		s.Delay = 0
	}
	def(&s.Initial, 24*time.Hour)
	def(&s.MaxWindow, 24*time.Hour)
	return s
}

// Windows plans a live run: from the cursor (minus the look-back) or, without
// a cursor, from now − Initial, up to now − Delay, in windows of at most
// MaxWindow. It is pure; ok=false (no cursor) uses Initial.
func (s Schedule) Windows(cursor time.Time, ok bool, now time.Time) []Window {
	s = s.WithDefaults()
	to := now.Add(-s.Delay).UTC().Truncate(time.Second)
	from := to.Add(-s.Initial)
	if ok {
		from = cursor.UTC().Add(-s.Lookback)
	}
	var out []Window
	for from.Before(to) {
		end := from.Add(s.MaxWindow)
		if end.After(to) {
			end = to
		}
		out = append(out, Window{From: from, To: end})
		from = end
	}
	return out
}

// Incremental runs one source's live extraction: every Interval it reads
// from its cursor to now and moves the cursor forward window by window, and
// it publishes a heartbeat (kind "source") after every run. A failed window
// leaves the cursor where it was, so the next run reads it again.
type Incremental struct {
	src   Source
	sched Schedule
	kv    Store
	deps  Deps
	hb    publish.SyncPublisher
	log   *slog.Logger
}

// NewIncremental returns the live loop of src. hb publishes heartbeats;
// nil publishes none.
func NewIncremental(src Source, sched Schedule, kv Store, deps Deps, hb publish.SyncPublisher) *Incremental {
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Incremental{src: src, sched: sched.WithDefaults(), kv: kv, deps: deps, hb: hb, log: log.With("source", src.Name())}
}

// RunOnce reads everything between the cursor and now − Delay. It returns
// what was published and the first error; the windows before the failing
// one stay committed.
func (r *Incremental) RunOnce(ctx context.Context, runID string) (Stats, error) {
	var total Stats
	cur, ok, err := LoadCursor(ctx, r.kv, r.src.Name())
	if err != nil {
		return total, err
	}
	for _, w := range r.sched.Windows(cur.Until, ok, r.deps.now()) {
		st, err := RunWindow(ctx, r.src, w, runID, r.deps)
		total = total.Add(st)
		if err != nil {
			return total, err
		}
		if _, err := AdvanceCursor(ctx, r.kv, r.src.Name(), w.To, runID); err != nil {
			return total, err
		}
	}
	return total, nil
}

// Loop calls RunOnce every Interval until ctx ends, then returns nil. Errors
// are logged, counted and reported in the heartbeat; they never stop the
// loop, and one source's failures never hold another's loop back.
func (r *Incremental) Loop(ctx context.Context) error {
	t := time.NewTicker(r.sched.Interval)
	defer t.Stop()
	for {
		r.RunReported(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunReported is one run under a new run id, logged, counted and reported
// in a heartbeat (a run cut short by ctx is not reported).
func (r *Incremental) RunReported(ctx context.Context) (Stats, error) {
	runID := proto.NewCorrelationID()
	start := time.Now()
	st, err := r.RunOnce(ctx, runID)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return st, err
	}
	class, reachable := Classify(err)
	hb := proto.Heartbeat{
		Source: r.src.Name(), Kind: proto.HeartbeatSource, Address: r.src.Address(), RunID: runID,
		ObservedAt: time.Now().UTC(), Reachable: reachable, ErrorClass: class,
		DurationMS:       float64(time.Since(start).Microseconds()) / 1000,
		RecordsPublished: st.Records, RecordsRejected: st.Rejected,
	}
	if err != nil {
		hb.Error = err.Error()
		r.log.Error("source run failed; the next run reads the window again", "run_id", runID, "class", class, "err", err)
		if r.deps.Metrics != nil {
			r.deps.Metrics.Errors.WithLabelValues(class).Inc()
		}
	} else if st.Records > 0 || st.Rejected > 0 {
		r.log.Info("source run", "run_id", runID, "records", st.Records, "duplicates", st.Duplicates, "rejected", st.Rejected,
			"duration", time.Since(start).Round(time.Millisecond))
	}
	if r.hb != nil {
		publish.Heartbeat(context.WithoutCancel(ctx), r.hb, hb, r.deps.Metrics, r.log)
	}
	return st, err
}

// String names the loop in logs.
func (r *Incremental) String() string { return fmt.Sprintf("%s source %s", r.src.Kind(), r.src.Name()) }
