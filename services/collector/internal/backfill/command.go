package backfill

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/punchflow/punchflow/platform/config"
	"github.com/punchflow/punchflow/platform/dispose"
	"github.com/punchflow/punchflow/platform/logging"
	"github.com/punchflow/punchflow/platform/metrics"
	"github.com/punchflow/punchflow/platform/natsconn"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/extract"
	"github.com/punchflow/punchflow/services/collector/internal/publish"
	"github.com/punchflow/punchflow/services/collector/internal/sources"
)

// Flags are the settings of the backfill command.
type Flags struct {
	ConfigFile  string
	SourcesFile string
	From, To    string
	Sources     string
	ChunkDays   string
	Mode        string
	Workers     int
	TimeZone    string
	Retries     int
	Progress    time.Duration
	NoCursor    bool
	DryRun      bool
	Provision   bool
	LogLevel    string
	LogFormat   string
	NATS        natsconn.Options
	Topology    topology.Config
}

func (f *Flags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.ConfigFile, config.FileFlag, "", "optional YAML file of settings (keys are flag names)")
	fs.StringVar(&f.SourcesFile, "sources-file", "", "YAML file declaring the api and sql sources (required)")
	fs.StringVar(&f.From, "from", "", "first day to backfill, YYYY-MM-DD (required)")
	fs.StringVar(&f.To, "to", "", "last day to backfill, YYYY-MM-DD, inclusive (required)")
	fs.StringVar(&f.Sources, "sources", "", "sources to backfill, comma-separated (default: every source of the file)")
	fs.StringVar(&f.ChunkDays, "chunk-days", "", "window size in days, 1–30: one value (3) or per source (a:3,b:5); default the source's chunk_days")
	fs.StringVar(&f.Mode, "mode", "", "sequential or parallel: one value or per source (a:parallel,b:sequential); default the source's mode")
	fs.IntVar(&f.Workers, "workers", 0, "windows in flight per parallel source (default the source's workers, 4)")
	fs.StringVar(&f.TimeZone, "time-zone", "UTC", "IANA time zone the days are counted in")
	fs.IntVar(&f.Retries, "window-retries", 2, "times a failed window is tried again within the run")
	fs.DurationVar(&f.Progress, "progress", time.Second, "how often progress is shown (0: only the summary)")
	fs.BoolVar(&f.NoCursor, "no-cursor", false, "leave the live cursors where they are (by default a source's cursor moves to the end of a completed range)")
	fs.BoolVar(&f.DryRun, "dry-run", false, "print the windows and which are already done, and read nothing")
	fs.BoolVar(&f.Provision, "provision", true, "create or update streams and KV buckets at start")
	fs.StringVar(&f.LogLevel, "log-level", "warn", "log level: debug, info, warn or error (progress goes to stdout)")
	fs.StringVar(&f.LogFormat, "log-format", logging.FormatAuto, "log format: auto, json or text")
	f.NATS.RegisterFlags(fs)
	f.Topology.RegisterFlags(fs)
}

// plan is the validated backfill.
type plan struct {
	jobs []Job
	loc  *time.Location
}

// Command is "collector backfill": it reads --from..--to of the chosen
// sources into the raw stream, shows progress per source on stdout, and
// ends with a summary. Flags also come from PUNCHFLOW_* variables and the
// --config file, as for the service. It returns an error when a window
// failed or the run was stopped; rerunning the same command resumes.
func Command(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("collector backfill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f Flags
	f.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: collector backfill --sources-file FILE --from YYYY-MM-DD --to YYYY-MM-DD [--sources a,b] [--chunk-days a:3,b:5] [--mode a:parallel,b:sequential] [--workers 4]")
		fs.PrintDefaults()
	}
	if err := config.Load(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("collector backfill: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("collector backfill: unexpected arguments %q", fs.Args())
	}
	log, err := logging.New(stderr, f.LogFormat, f.LogLevel, "collector-backfill")
	if err != nil {
		return fmt.Errorf("collector backfill: %w", err)
	}
	file, names, err := f.validate()
	if err != nil {
		return fmt.Errorf("collector backfill: invalid configuration: %w", err)
	}
	set, err := file.Open(ctx, names, getenv, log)
	if err != nil {
		return fmt.Errorf("collector backfill: %w", err)
	}
	defer set.Close()
	p, err := f.plan(set)
	if err != nil {
		return fmt.Errorf("collector backfill: invalid configuration: %w", err)
	}

	m := metrics.NewPipeline(prometheus.NewRegistry(), "collector")
	nc, err := natsconn.Connect(f.NATS, "punchflow-collector-backfill", log, m)
	if err != nil {
		return fmt.Errorf("collector backfill: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return fmt.Errorf("collector backfill: jetstream: %w", err)
	}
	if f.Provision {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := topology.Ensure(pctx, js, f.Topology)
		cancel()
		if err != nil {
			return fmt.Errorf("collector backfill: %w", err)
		}
	}
	kv, err := js.KeyValue(ctx, f.Topology.CheckpointBucket)
	if err != nil {
		return fmt.Errorf("collector backfill: checkpoint bucket %s: %w (run with --provision or create it)", f.Topology.CheckpointBucket, err)
	}
	if f.DryRun {
		return printPlan(ctx, stdout, kv, p)
	}

	o := Options{
		Deps: extract.Deps{Pub: js, DLQ: dispose.New(js, proto.StageCollect, 0, m, log), Metrics: m, Log: log,
			Publish: publish.Options{AckTimeout: 15 * time.Second, Budget: time.Minute}},
		KV: kv, WindowRetries: f.Retries, NoCursor: f.NoCursor,
	}
	if f.Retries <= 0 {
		o.WindowRetries = -1
	}
	d := newDisplay(stdout, p.jobs)
	o.Progress = d.update
	fmt.Fprintf(stdout, "backfill %s..%s (%s) of %d source(s)\n", f.From, f.To, p.loc, len(p.jobs))
	stopDisplay := d.run(f.Progress)
	sum, err := Run(ctx, p.jobs, o)
	stopDisplay()
	writeSummary(stdout, sum)
	if err != nil {
		return fmt.Errorf("collector backfill: incomplete (rerun the same command to resume): %w", err)
	}
	return nil
}

// validate checks the flags and loads the sources file; it returns the
// names of the sources to open.
func (f *Flags) validate() (*sources.File, []string, error) {
	var errs []error
	if f.SourcesFile == "" {
		errs = append(errs, errors.New("--sources-file is required (PUNCHFLOW_SOURCES_FILE)"))
	}
	if f.From == "" || f.To == "" {
		errs = append(errs, errors.New("--from and --to are required (YYYY-MM-DD, both inclusive)"))
	}
	if f.Workers < 0 {
		errs = append(errs, fmt.Errorf("--workers %d must be positive", f.Workers))
	}
	errs = append(errs, f.NATS.Validate(), f.Topology.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	file, err := sources.Load(f.SourcesFile)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, n := range strings.Split(f.Sources, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return file, names, nil
}

// plan builds the jobs: the windows of each source with its chunk size and
// mode, flags over the sources file.
func (f *Flags) plan(set sources.Set) (plan, error) {
	loc, err := time.LoadLocation(f.TimeZone)
	if err != nil {
		return plan{}, fmt.Errorf("--time-zone %q: %v", f.TimeZone, err)
	}
	chunkAll, chunkPer, err := ParsePerSource(f.ChunkDays)
	if err != nil {
		return plan{}, fmt.Errorf("--chunk-days %w", err)
	}
	modeAll, modePer, err := ParsePerSource(f.Mode)
	if err != nil {
		return plan{}, fmt.Errorf("--mode %w", err)
	}
	var errs []error
	for _, per := range []map[string]string{chunkPer, modePer} {
		for n := range per {
			if _, ok := set.Lookup(n); !ok {
				errs = append(errs, fmt.Errorf("--chunk-days/--mode name %q, which is not a source being backfilled", n))
			}
		}
	}
	p := plan{loc: loc}
	for _, e := range set {
		name := e.Source.Name()
		chunk := e.Settings.ChunkDays
		if v := cmpOr(chunkPer[name], chunkAll); v != "" {
			if chunk, err = strconv.Atoi(v); err != nil {
				errs = append(errs, fmt.Errorf("--chunk-days for %s: %q is not a number", name, v))
				continue
			}
		}
		mode := cmpOr(modePer[name], modeAll, e.Settings.Mode)
		if mode != sources.Parallel && mode != sources.Sequential {
			errs = append(errs, fmt.Errorf("--mode for %s: %q must be parallel or sequential", name, mode))
			continue
		}
		workers := e.Settings.Workers
		if f.Workers > 0 {
			workers = f.Workers
		}
		ws, err := Split(f.From, f.To, chunk, loc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		p.jobs = append(p.jobs, Job{Source: e.Source, Windows: ws, Parallel: mode == sources.Parallel, Workers: workers})
	}
	return p, errors.Join(errs...)
}

func cmpOr(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func printPlan(ctx context.Context, w io.Writer, kv extract.Store, p plan) error {
	for _, j := range p.jobs {
		mode := "sequential"
		if j.Parallel {
			mode = fmt.Sprintf("parallel, %d workers", j.Workers)
		}
		fmt.Fprintf(w, "%s (%s, %s): %d windows\n", j.Source.Name(), j.Source.Kind(), mode, len(j.Windows))
		for _, win := range j.Windows {
			rec, _, ok, err := load(ctx, kv, Key(j.Source.Name(), win))
			if err != nil {
				return err
			}
			state := "to do"
			if ok {
				state = rec.State
				if rec.State == StateDone {
					state += fmt.Sprintf(" (%d records, run %s)", rec.Records, rec.RunID)
				}
			}
			fmt.Fprintf(w, "  %s..%s  %s\n", win.First, win.Last, state)
		}
	}
	return nil
}

// display shows the progress of every source: redrawn in place on a
// terminal, one block of lines per interval otherwise.
type display struct {
	w     io.Writer
	tty   bool
	order []string

	mu    sync.Mutex
	state map[string]Progress
	drawn int
}

func newDisplay(w io.Writer, jobs []Job) *display {
	d := &display{w: w, state: map[string]Progress{}}
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		d.tty = true
	}
	for _, j := range jobs {
		d.order = append(d.order, j.Source.Name())
		d.state[j.Source.Name()] = Progress{Source: j.Source.Name(), Total: len(j.Windows), Started: time.Now()}
	}
	return d
}

func (d *display) update(p Progress) {
	d.mu.Lock()
	d.state[p.Source] = p
	d.mu.Unlock()
}

// run draws every interval until the returned stop is called, which draws
// a last time.
func (d *display) run(every time.Duration) (stop func()) {
	if every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				d.draw()
				return
			case <-t.C:
				d.draw()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (d *display) draw() {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	var b strings.Builder
	if d.tty && d.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", d.drawn)
	}
	width := 0
	for _, n := range d.order {
		width = max(width, len(n))
	}
	for _, n := range d.order {
		if d.tty {
			b.WriteString("\x1b[2K")
		}
		b.WriteString(progressLine(d.state[n], width, now))
		b.WriteByte('\n')
	}
	if !d.tty {
		b.WriteByte('\n')
	}
	d.drawn = len(d.order)
	_, _ = io.WriteString(d.w, b.String())
}

// progressLine renders one source's progress, e.g.
//
//	shop-orders  [########------------]  12/31 windows  45,120 records  3,210 rec/s  ETA 12s  1 failed
func progressLine(p Progress, width int, now time.Time) string {
	finished := p.Skipped + p.Done
	const bar = 20
	fill := 0
	if p.Total > 0 {
		fill = finished * bar / p.Total
	}
	s := fmt.Sprintf("%-*s  [%s%s]  %d/%d windows  %s records  %s rec/s", width, p.Source,
		strings.Repeat("#", fill), strings.Repeat("-", bar-fill), finished, p.Total, thousands(p.Records), thousands(int(p.Rate(now))))
	switch eta, ok := p.ETA(now); {
	case p.Finished && p.Remaining() == 0:
		s += "  done"
	case p.Finished:
		s += "  stopped"
	case ok:
		s += "  ETA " + eta.Round(time.Second).String()
	default:
		s += "  ETA …"
	}
	if p.Running > 0 {
		s += fmt.Sprintf("  %d running", p.Running)
	}
	if p.Failed > 0 {
		s += fmt.Sprintf("  %d failed", p.Failed)
	}
	return s
}

// thousands renders n with thousands separators.
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// writeSummary prints the outcome per source and in total.
func writeSummary(w io.Writer, s Summary) {
	fmt.Fprintf(w, "\nbackfill run %s finished in %v\n", s.RunID, s.Duration.Round(time.Millisecond))
	width := len("source")
	for _, p := range s.Sources {
		width = max(width, len(p.Source))
	}
	fmt.Fprintf(w, "%-*s  %7s  %7s  %7s  %7s  %10s  %10s  %8s  %10s\n", width, "source", "windows", "skipped", "done", "failed", "records", "duplicates", "rejected", "rec/s")
	var total Progress
	for _, p := range s.Sources {
		fmt.Fprintf(w, "%-*s  %7d  %7d  %7d  %7d  %10s  %10s  %8s  %10s\n", width, p.Source, p.Total, p.Skipped, p.Done, p.Failed,
			thousands(p.Records), thousands(p.Dups), thousands(p.Rejected), thousands(int(float64(p.Records)/max(s.Duration.Seconds(), 1e-9))))
		total.Total += p.Total
		total.Skipped += p.Skipped
		total.Done += p.Done
		total.Failed += p.Failed
		total.Records += p.Records
		total.Dups += p.Dups
		total.Rejected += p.Rejected
	}
	fmt.Fprintf(w, "%-*s  %7d  %7d  %7d  %7d  %10s  %10s  %8s  %10s\n", width, "total", total.Total, total.Skipped, total.Done, total.Failed,
		thousands(total.Records), thousands(total.Dups), thousands(total.Rejected), thousands(int(float64(total.Records)/max(s.Duration.Seconds(), 1e-9))))
	names := make([]string, 0)
	for _, p := range s.Sources {
		if p.Err != nil {
			names = append(names, p.Source)
			fmt.Fprintf(w, "%s: %v\n", p.Source, p.Err)
		}
	}
	if len(names) > 0 {
		slices.Sort(names)
		fmt.Fprintf(w, "incomplete: %s; rerun the same command to resume\n", strings.Join(names, ", "))
	}
}
