// Package sources reads the collector's sources file: the HTTP API and SQL
// table sources, each with its live schedule and its backfill defaults, and
// opens them as extract.Sources.
//
//	defaults:                 # optional; every source may override any of these
//	  interval: 1m            # live loop: time between runs
//	  lookback: 5m            # live loop: re-read this much before the cursor
//	  delay: 0s               # live loop: leave out the newest …
//	  initial: 24h            # live loop: first run without a cursor reads this far back
//	  max_window: 24h         # live loop: longest window of one catch-up step
//	  chunk_days: 1           # backfill: window size in days (1–30)
//	  mode: sequential        # backfill: sequential or parallel
//	  workers: 4              # backfill: windows in flight for a parallel source
//	api:
//	  - name: shop-orders
//	    base_url: https://shop.example.com
//	    ...                   # apisource.Config
//	    schedule: {interval: 5m, chunk_days: 3, mode: parallel}
//	sql:
//	  - name: hr-leave
//	    driver: postgres
//	    ...                   # sqlsource.Config
package sources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/punchflow/punchflow/services/collector/internal/apisource"
	"github.com/punchflow/punchflow/services/collector/internal/extract"
	"github.com/punchflow/punchflow/services/collector/internal/sqlsource"
)

// Backfill modes.
const (
	Sequential = "sequential"
	Parallel   = "parallel"
)

// Settings are a source's live schedule and backfill defaults. Zero values
// inherit from the file's defaults, then from the built-in defaults.
type Settings struct {
	Interval  time.Duration `yaml:"interval"`
	Lookback  time.Duration `yaml:"lookback"`
	Delay     time.Duration `yaml:"delay"`
	Initial   time.Duration `yaml:"initial"`
	MaxWindow time.Duration `yaml:"max_window"`
	ChunkDays int           `yaml:"chunk_days"`
	Mode      string        `yaml:"mode"`
	Workers   int           `yaml:"workers"`
}

// over returns s with its zero fields taken from d.
func (s Settings) over(d Settings) Settings {
	pick := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	pick(&s.Interval, d.Interval)
	pick(&s.Lookback, d.Lookback)
	pick(&s.Delay, d.Delay)
	pick(&s.Initial, d.Initial)
	pick(&s.MaxWindow, d.MaxWindow)
	if s.ChunkDays == 0 {
		s.ChunkDays = d.ChunkDays
	}
	if s.Mode == "" {
		s.Mode = d.Mode
	}
	if s.Workers == 0 {
		s.Workers = d.Workers
	}
	return s
}

// builtin are the defaults of every setting.
var builtin = Settings{ChunkDays: 1, Mode: Sequential, Workers: 4}

func (s Settings) validate(name string) error {
	var errs []error
	if s.ChunkDays < 1 || s.ChunkDays > 30 {
		errs = append(errs, fmt.Errorf("source %q: chunk_days %d must be from 1 to 30", name, s.ChunkDays))
	}
	if s.Mode != Sequential && s.Mode != Parallel {
		errs = append(errs, fmt.Errorf("source %q: mode %q must be sequential or parallel", name, s.Mode))
	}
	if s.Workers < 1 {
		errs = append(errs, fmt.Errorf("source %q: workers %d must be at least 1", name, s.Workers))
	}
	for k, v := range map[string]time.Duration{"interval": s.Interval, "initial": s.Initial, "max_window": s.MaxWindow, "delay": s.Delay, "lookback": s.Lookback} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("source %q: %s %v must not be negative", name, k, v))
		}
	}
	return errors.Join(errs...)
}

// Schedule is the live loop's schedule.
func (s Settings) Schedule() extract.Schedule {
	return extract.Schedule{Interval: s.Interval, Lookback: s.Lookback, Delay: s.Delay, Initial: s.Initial, MaxWindow: s.MaxWindow}.WithDefaults()
}

// APIDoc is one item of the file's api list.
type APIDoc struct {
	apisource.Config `yaml:",inline"`
	Schedule         Settings `yaml:"schedule"`
}

// SQLDoc is one item of the file's sql list.
type SQLDoc struct {
	sqlsource.Config `yaml:",inline"`
	Schedule         Settings `yaml:"schedule"`
}

// File is a parsed sources file.
type File struct {
	Defaults Settings `yaml:"defaults"`
	API      []APIDoc `yaml:"api"`
	SQL      []SQLDoc `yaml:"sql"`
}

// Load reads and validates a sources file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sources file: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("sources file %s: %w", path, err)
	}
	return f, nil
}

// Parse reads and validates the YAML of a sources file. Unknown keys are
// errors (a typo never goes unnoticed); every problem is reported.
func Parse(data []byte) (*File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var errs []error
	seen := map[string]bool{}
	name := func(n string) {
		if n != "" && seen[n] {
			errs = append(errs, fmt.Errorf("source name %q is used twice; names must be unique", n))
		}
		seen[n] = true
	}
	for i := range f.API {
		d := &f.API[i]
		name(d.Name)
		errs = append(errs, d.Config.Validate(), d.Schedule.over(f.Defaults).over(builtin).validate(d.Name))
	}
	for i := range f.SQL {
		d := &f.SQL[i]
		name(d.Name)
		errs = append(errs, d.Config.Validate(), d.Schedule.over(f.Defaults).over(builtin).validate(d.Name))
	}
	if len(f.API)+len(f.SQL) == 0 {
		errs = append(errs, errors.New("declares no source: add an api or sql list"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &f, nil
}

// Names lists the declared sources, api first, in file order.
func (f *File) Names() []string {
	var out []string
	for _, d := range f.API {
		out = append(out, d.Name)
	}
	for _, d := range f.SQL {
		out = append(out, d.Name)
	}
	return out
}

// Entry is one opened source with its settings.
type Entry struct {
	Source   extract.Source
	Settings Settings
	close    func() error
}

// Set is the opened sources; Close releases their connections.
type Set []Entry

// Lookup returns the entry of a source by name.
func (s Set) Lookup(name string) (Entry, bool) {
	for _, e := range s {
		if e.Source.Name() == name {
			return e, true
		}
	}
	return Entry{}, false
}

// Close closes every source that holds connections.
func (s Set) Close() error {
	var errs []error
	for _, e := range s {
		if e.close != nil {
			errs = append(errs, e.close())
		}
	}
	return errors.Join(errs...)
}

// Open opens the sources named in only (all when only is empty): API
// sources resolve their secrets, SQL sources connect. It fails on the first
// source that cannot be opened, naming it, and closes what it opened.
func (f *File) Open(ctx context.Context, only []string, getenv func(string) string, log *slog.Logger) (Set, error) {
	want := map[string]bool{}
	for _, n := range only {
		want[n] = true
	}
	var unknown []string
	for n := range want {
		found := false
		for _, have := range f.Names() {
			found = found || have == n
		}
		if !found {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown source(s) %v; the sources file declares %v", unknown, f.Names())
	}
	use := func(n string) bool { return len(want) == 0 || want[n] }
	var set Set
	for _, d := range f.API {
		if !use(d.Name) {
			continue
		}
		src, err := apisource.New(d.Config, getenv, nil, log)
		if err != nil {
			_ = set.Close()
			return nil, err
		}
		set = append(set, Entry{Source: src, Settings: d.Schedule.over(f.Defaults).over(builtin)})
	}
	for _, d := range f.SQL {
		if !use(d.Name) {
			continue
		}
		src, err := sqlsource.Open(ctx, d.Config, getenv, log)
		if err != nil {
			_ = set.Close()
			return nil, err
		}
		set = append(set, Entry{Source: src, Settings: d.Schedule.over(f.Defaults).over(builtin), close: src.Close})
	}
	return set, nil
}
