package backfill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"
	"github.com/sethvargo/go-retry"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/extract"
)

// Window states recorded in KV.
const (
	StateRunning = "running"
	StateDone    = "done"
	StateFailed  = "failed"
)

// Record is the KV value of a window.
type Record struct {
	State      string    `json:"state"`
	RunID      string    `json:"run_id"`
	Attempts   int       `json:"attempts"`
	Records    int       `json:"records,omitempty"`
	Duplicates int       `json:"duplicates,omitempty"`
	Rejected   int       `json:"rejected,omitempty"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// Job is the backfill of one source.
type Job struct {
	Source  extract.Source
	Windows []Window
	// Parallel runs up to Workers windows at once; otherwise one at a time,
	// in order, and the first window that fails stops the source (the
	// rest waits for the rerun).
	Parallel bool
	Workers  int
}

// Options are what a backfill publishes to and how it retries.
type Options struct {
	Deps extract.Deps
	KV   extract.Store
	// RunID identifies this backfill run in records, KV and logs (default:
	// a new correlation id).
	RunID string
	// WindowRetries is how often a failed window is tried again within the
	// run, after 1 s, 2 s, 4 s … (default 2; -1 for never).
	WindowRetries int
	// NoCursor leaves the live cursors alone.
	NoCursor bool
	// Progress receives a snapshot after every window (and at start), from
	// the source's goroutine; it must not block for long.
	Progress func(Progress)
}

// Progress is the state of one source's backfill.
type Progress struct {
	Source   string
	Total    int // windows in the range
	Skipped  int // windows done by an earlier run
	Done     int // windows done in this run
	Failed   int // windows that failed in this run (after retries)
	Running  int
	Records  int // records published in this run
	Dups     int
	Rejected int
	Started  time.Time
	Finished bool
	// Err is the first error of the source, if any.
	Err error
}

// Remaining is the number of windows neither done nor failed.
func (p Progress) Remaining() int { return p.Total - p.Skipped - p.Done - p.Failed }

// Rate is the records per second of this run so far.
func (p Progress) Rate(now time.Time) float64 {
	if s := now.Sub(p.Started).Seconds(); s > 0 {
		return float64(p.Records) / s
	}
	return 0
}

// ETA estimates the time left from the pace of the windows done so far.
func (p Progress) ETA(now time.Time) (time.Duration, bool) {
	if p.Done == 0 || p.Remaining() == 0 {
		return 0, p.Remaining() == 0
	}
	per := now.Sub(p.Started) / time.Duration(p.Done)
	return per * time.Duration(p.Remaining()), true
}

// Summary is the outcome of a backfill run.
type Summary struct {
	RunID    string
	Sources  []Progress
	Duration time.Duration
}

// Run backfills every job concurrently (one source never waits for another)
// and returns when all are finished or ctx ends. The error joins the
// failures of every source; windows that failed stay recorded as failed
// and are tried again by the next run.
func Run(ctx context.Context, jobs []Job, o Options) (Summary, error) {
	if o.RunID == "" {
		o.RunID = proto.NewCorrelationID()
	}
	if o.WindowRetries == 0 {
		o.WindowRetries = 2
	}
	if o.WindowRetries < 0 {
		o.WindowRetries = 0
	}
	if o.Deps.Log == nil {
		o.Deps.Log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	sum := Summary{RunID: o.RunID, Sources: make([]Progress, len(jobs))}
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sum.Sources[i] = runJob(ctx, j, o)
		}()
	}
	wg.Wait()
	sum.Duration = time.Since(start)
	var errs []error
	for _, p := range sum.Sources {
		if p.Err != nil {
			errs = append(errs, p.Err)
		}
	}
	return sum, errors.Join(errs...)
}

type jobRun struct {
	job Job
	o   Options
	log *slog.Logger

	mu sync.Mutex
	p  Progress
}

func (r *jobRun) update(f func(p *Progress)) {
	r.mu.Lock()
	f(&r.p)
	p := r.p
	r.mu.Unlock()
	if r.o.Progress != nil {
		r.o.Progress(p)
	}
}

func runJob(ctx context.Context, j Job, o Options) Progress {
	name := j.Source.Name()
	r := &jobRun{job: j, o: o, log: o.Deps.Log.With("source", name, "run_id", o.RunID),
		p: Progress{Source: name, Total: len(j.Windows), Started: time.Now()}}
	// Windows already done are skipped without contacting the source.
	var todo []Window
	for _, w := range j.Windows {
		rec, _, ok, err := load(ctx, o.KV, Key(name, w))
		if err != nil {
			r.update(func(p *Progress) { p.Err, p.Finished = err, true })
			return r.p
		}
		if ok && rec.State == StateDone {
			r.p.Skipped++
			continue
		}
		todo = append(todo, w)
	}
	if r.p.Skipped > 0 {
		r.log.Info("resuming backfill", "done_before", r.p.Skipped, "to_do", len(todo))
	}
	r.update(func(*Progress) {})

	workers := 1
	if j.Parallel {
		workers = max(1, j.Workers)
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	work := make(chan Window)
	var wg sync.WaitGroup
	for range min(workers, max(len(todo), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range work {
				if err := r.window(ctx, w); err != nil && !j.Parallel {
					stop() // sequential: the rest waits for the rerun
				}
			}
		}()
	}
feed:
	for _, w := range todo {
		select {
		case work <- w:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()

	r.mu.Lock()
	complete := r.p.Skipped+r.p.Done == r.p.Total
	r.mu.Unlock()
	if complete && !o.NoCursor && len(j.Windows) > 0 {
		end := j.Windows[len(j.Windows)-1].To
		if moved, err := extract.AdvanceCursor(context.WithoutCancel(ctx), o.KV, name, end, o.RunID); err != nil {
			r.update(func(p *Progress) { p.Err = errors.Join(p.Err, err) })
		} else if moved {
			r.log.Info("live cursor moved to the end of the backfill", "until", end)
		}
	}
	if !complete {
		if ctxErr := context.Cause(ctx); r.p.Err == nil && ctxErr != nil {
			r.update(func(p *Progress) {
				p.Err = fmt.Errorf("backfill of %s stopped with %d windows left: %w", name, p.Remaining(), ctxErr)
			})
		}
	}
	r.update(func(p *Progress) { p.Finished = true })
	return r.p
}

// window runs one window: claims it in KV, extracts it (retrying the
// whole window within the run), and records it done or failed.
func (r *jobRun) window(ctx context.Context, w Window) error {
	name := r.job.Source.Name()
	key := Key(name, w)
	if ctx.Err() != nil {
		return ctx.Err() // stopped: the window stays to do
	}
	rev, attempts, skip, err := r.claim(ctx, key)
	if err != nil && ctx.Err() != nil {
		return err
	}
	if err != nil || skip {
		if err != nil {
			r.update(func(p *Progress) { p.Failed++; p.Err = errors.Join(p.Err, err) })
		} else {
			r.update(func(p *Progress) { p.Skipped++ })
		}
		return err
	}
	r.update(func(p *Progress) { p.Running++ })
	started := time.Now().UTC()
	var st extract.Stats
	bo := retry.WithMaxRetries(uint64(r.o.WindowRetries), retry.WithCappedDuration(30*time.Second, retry.NewExponential(time.Second)))
	err = retry.Do(ctx, bo, func(ctx context.Context) error {
		var err error
		st, err = extract.RunWindow(ctx, r.job.Source, w.Window, r.o.RunID, r.o.Deps)
		if err != nil && ctx.Err() == nil && !errors.Is(err, extract.ErrUnauthorized) {
			r.log.Warn("window failed, trying it again", "window", w.First+".."+w.Last, "err", err)
			return retry.RetryableError(err)
		}
		return err
	})
	rec := Record{State: StateDone, RunID: r.o.RunID, Attempts: attempts, Records: st.Records, Duplicates: st.Duplicates,
		Rejected: st.Rejected, StartedAt: started, FinishedAt: time.Now().UTC()}
	if err != nil {
		if ctx.Err() != nil {
			// Stopped (killed, or an earlier sequential window failed): the
			// window stays "running" and the next run takes it over.
			r.update(func(p *Progress) { p.Running-- })
			return err
		}
		rec.State, rec.Error = StateFailed, err.Error()
		r.log.Error("window failed; the next run tries it again", "window", w.First+".."+w.Last, "err", err)
	}
	if serr := r.save(context.WithoutCancel(ctx), key, rev, rec); serr != nil {
		err = errors.Join(err, serr)
	}
	r.update(func(p *Progress) {
		p.Running--
		p.Records += st.Records
		p.Dups += st.Duplicates
		p.Rejected += st.Rejected
		if err != nil {
			p.Failed++
			p.Err = errors.Join(p.Err, err)
		} else {
			p.Done++
		}
	})
	return err
}

func load(ctx context.Context, kv extract.Store, key string) (Record, uint64, bool, error) {
	var rec Record
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rec, 0, false, nil
	}
	if err != nil {
		return rec, 0, false, fmt.Errorf("read backfill window %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return rec, 0, false, fmt.Errorf("backfill window %s is not valid JSON (%q): %w", key, e.Value(), err)
	}
	return rec, e.Revision(), true, nil
}

// claim records the window as running under this run with
// compare-and-swap. skip is true when another run finished it meanwhile.
// A window left "running" by a run that died is taken over.
func (r *jobRun) claim(ctx context.Context, key string) (rev uint64, attempts int, skip bool, err error) {
	for try := 0; try < 8; try++ {
		rec, cur, ok, err := load(ctx, r.o.KV, key)
		if err != nil {
			return 0, 0, false, err
		}
		if ok && rec.State == StateDone {
			return 0, 0, true, nil
		}
		if ok && rec.State == StateRunning && rec.RunID != r.o.RunID {
			r.log.Info("taking over a window a stopped run left unfinished", "key", key, "previous_run", rec.RunID)
		}
		next := Record{State: StateRunning, RunID: r.o.RunID, Attempts: rec.Attempts + 1, StartedAt: time.Now().UTC()}
		b, _ := json.Marshal(next)
		if ok {
			rev, err = r.o.KV.Update(ctx, key, b, cur)
		} else {
			rev, err = r.o.KV.Create(ctx, key, b)
		}
		if err == nil {
			return rev, next.Attempts, false, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return 0, 0, false, fmt.Errorf("claim backfill window %s: %w", key, err)
		}
	}
	return 0, 0, false, fmt.Errorf("claim backfill window %s: too many concurrent updates", key)
}

// save records the outcome with compare-and-swap on the claim's revision.
// When the record changed meanwhile (another run took the window over), a
// "done" still wins over anything but "done"; a "failed" never overwrites
// another run's record.
func (r *jobRun) save(ctx context.Context, key string, rev uint64, rec Record) error {
	b, _ := json.Marshal(rec)
	for try := 0; try < 8; try++ {
		_, err := r.o.KV.Update(ctx, key, b, rev)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("record backfill window %s: %w", key, err)
		}
		cur, curRev, _, lerr := load(ctx, r.o.KV, key)
		if lerr != nil {
			return lerr
		}
		if cur.State == StateDone || rec.State != StateDone {
			return nil
		}
		rev = curRev
	}
	return fmt.Errorf("record backfill window %s: too many concurrent updates", key)
}
