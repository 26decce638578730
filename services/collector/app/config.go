package app

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/services/collector/internal/csvsource"
	"github.com/punchflow/punchflow/services/collector/internal/fleet"
)

// Config is the collector's configuration. At least one source is required:
// a CSV folder (--csv-dir), a device fleet (--fleet), or both.
type Config struct {
	service.Common
	CSV struct {
		Name        string
		Dir         string
		DoneDir     string
		Columns     string
		TimeLayouts string
		Site        string
		Device      string
		TimeZone    string
		Poll        time.Duration
		Settle      time.Duration
		ChunkLines  int
	}
	Fleet struct {
		File                 string
		Concurrency          int
		MaxLive              int
		ReadBudgetMB         int
		Lease                time.Duration
		Timeout              time.Duration
		ChunkTimeout         time.Duration
		Retries              int
		DialRetries          int
		BackoffBase          time.Duration
		BackoffMax           time.Duration
		BreakerFailures      int
		BreakerCooldown      time.Duration
		BreakerMaxCooldown   time.Duration
		UnauthorizedCooldown time.Duration
		PublishRetry         time.Duration
		Consumer             string
		Prune                bool
		Replica              string
	}
	// Once runs every source a single time and exits.
	Once bool

	mapping csvsource.Mapping
	devices []fleet.Device
	getenv  func(string) string
}

func (c *Config) register(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs, ":8081")
	fs.StringVar(&c.CSV.Name, "csv-name", "csv", "name of the CSV source (subjects, checkpoints, heartbeats)")
	fs.StringVar(&c.CSV.Dir, "csv-dir", "", "folder CSV punch files are dropped into (the CSV source runs when it is set)")
	fs.StringVar(&c.CSV.DoneDir, "csv-done-dir", "", "folder finished files are moved to (default: <csv-dir>/done)")
	fs.StringVar(&c.CSV.Columns, "csv-columns", "", "header mapping, e.g. user_id=EmpNo,device_time=Timestamp,state=Status (unmapped fields use their own names)")
	fs.StringVar(&c.CSV.TimeLayouts, "csv-time-layouts", "", "Go time layouts for device_time, separated by '|' (default: 2006-01-02 15:04:05 and common variants)")
	fs.StringVar(&c.CSV.Site, "csv-site", "", "site for files without a site column")
	fs.StringVar(&c.CSV.Device, "csv-device", "", "device serial for files without a device_serial column")
	fs.StringVar(&c.CSV.TimeZone, "csv-time-zone", "", "IANA time zone the devices are set to, when known")
	fs.DurationVar(&c.CSV.Poll, "csv-poll", 5*time.Second, "how often the folder is scanned")
	fs.DurationVar(&c.CSV.Settle, "csv-settle", time.Second, "ignore files modified more recently than this (still being copied)")
	fs.IntVar(&c.CSV.ChunkLines, "csv-chunk-lines", 1000, "lines published between checkpoints")

	d := fleet.DefaultBreakerPolicy
	fs.StringVar(&c.Fleet.File, "fleet", "", "YAML file listing the ZK devices to read (the fleet runs when it is set)")
	fs.IntVar(&c.Fleet.Concurrency, "fleet-concurrency", 16, "bulk reads (poll sessions, live reconciles) this replica runs at once")
	fs.IntVar(&c.Fleet.MaxLive, "fleet-max-live", 256, "live devices this replica holds at once")
	fs.IntVar(&c.Fleet.ReadBudgetMB, "fleet-read-budget-mb", 48, "memory the bulk reads in progress may hold, in MiB (estimated at 256 bytes per record)")
	fs.DurationVar(&c.Fleet.Lease, "fleet-lease", 30*time.Second, "how long a device stays held by a replica that stopped confirming it (the work queue's AckWait)")
	fs.DurationVar(&c.Fleet.Timeout, "fleet-timeout", 5*time.Second, "per-request device timeout (a device's timeout in the fleet file wins)")
	fs.DurationVar(&c.Fleet.ChunkTimeout, "fleet-chunk-timeout", 10*time.Second, "time allowed for one chunk of a bulk read")
	fs.IntVar(&c.Fleet.Retries, "fleet-chunk-retries", 2, "retries of a chunk that timed out or came back short")
	fs.IntVar(&c.Fleet.DialRetries, "fleet-dial-retries", 2, "retries of a failed connect within one session (never for a refused comm key)")
	fs.DurationVar(&c.Fleet.BackoffBase, "fleet-backoff-base", d.BackoffBase, "first delay after a failed session; doubles per failure, ±20% jitter")
	fs.DurationVar(&c.Fleet.BackoffMax, "fleet-backoff-max", d.BackoffMax, "longest delay after a failed session while the breaker is closed")
	fs.IntVar(&c.Fleet.BreakerFailures, "fleet-breaker-failures", d.Failures, "consecutive failed sessions that open a device's circuit breaker")
	fs.DurationVar(&c.Fleet.BreakerCooldown, "fleet-breaker-cooldown", d.Cooldown, "how long an open breaker stays open (doubles after a failed trial)")
	fs.DurationVar(&c.Fleet.BreakerMaxCooldown, "fleet-breaker-max-cooldown", d.MaxCooldown, "longest time a breaker stays open")
	fs.DurationVar(&c.Fleet.UnauthorizedCooldown, "fleet-unauthorized-cooldown", d.Unauthorized, "how long a device that refused its comm key is left alone (a changed key is tried at once)")
	fs.DurationVar(&c.Fleet.PublishRetry, "fleet-publish-retry", time.Minute, "how long unacknowledged punches are re-published before a session fails")
	fs.StringVar(&c.Fleet.Consumer, "fleet-consumer", "collector_fleet", "prefix of the fleet stream's durable consumers (<prefix>_poll, <prefix>_live)")
	fs.BoolVar(&c.Fleet.Prune, "fleet-prune", true, "at start, delete work items of devices no longer in the fleet file (all replicas share one file)")
	fs.StringVar(&c.Fleet.Replica, "fleet-replica", "", "name of this replica in logs and device state (default: the host name)")
	fs.BoolVar(&c.Once, "once", false, "run every source once and exit (the fleet reads every device once, without the work queue)")
}

// Validate checks the configuration and loads the fleet file.
func (c *Config) Validate() error {
	var errs []error
	if c.CSV.Dir == "" && c.Fleet.File == "" {
		errs = append(errs, errors.New("no source: give --csv-dir FOLDER (PUNCHFLOW_CSV_DIR), --fleet FILE (PUNCHFLOW_FLEET), or both"))
	}
	if c.CSV.Dir != "" {
		errs = append(errs, c.validateCSV()...)
	}
	if c.Fleet.File != "" {
		errs = append(errs, c.validateFleet()...)
	}
	errs = append(errs, c.Common.Validate())
	return errors.Join(errs...)
}

func (c *Config) validateCSV() []error {
	var errs []error
	if c.CSV.Poll <= 0 {
		errs = append(errs, errors.New("csv-poll must be positive"))
	}
	if c.CSV.ChunkLines < 1 {
		errs = append(errs, errors.New("csv-chunk-lines must be at least 1"))
	}
	if c.CSV.TimeZone != "" {
		if _, err := time.LoadLocation(c.CSV.TimeZone); err != nil {
			errs = append(errs, errors.New("csv-time-zone must be an IANA zone such as Europe/Berlin"))
		}
	}
	m, err := csvsource.ParseMapping(c.CSV.Columns)
	if err != nil {
		errs = append(errs, err)
	}
	c.mapping = m
	return errs
}

func (c *Config) validateFleet() []error {
	var errs []error
	f := &c.Fleet
	positive := map[string]time.Duration{
		"fleet-lease": f.Lease, "fleet-timeout": f.Timeout, "fleet-chunk-timeout": f.ChunkTimeout,
		"fleet-backoff-base": f.BackoffBase, "fleet-backoff-max": f.BackoffMax, "fleet-breaker-cooldown": f.BreakerCooldown,
		"fleet-breaker-max-cooldown": f.BreakerMaxCooldown, "fleet-unauthorized-cooldown": f.UnauthorizedCooldown,
		"fleet-publish-retry": f.PublishRetry,
	}
	for name, v := range positive {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	for name, v := range map[string]int{"fleet-concurrency": f.Concurrency, "fleet-max-live": f.MaxLive,
		"fleet-read-budget-mb": f.ReadBudgetMB, "fleet-breaker-failures": f.BreakerFailures} {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1", name))
		}
	}
	if f.Retries < 0 || f.DialRetries < 0 {
		errs = append(errs, errors.New("fleet-chunk-retries and fleet-dial-retries must not be negative"))
	}
	if f.Lease < time.Second {
		errs = append(errs, fmt.Errorf("fleet-lease %v: want at least 1s (progress is confirmed every quarter of it)", f.Lease))
	}
	if f.PublishRetry > c.Topology.DuplicateWindow/2 {
		errs = append(errs, fmt.Errorf("fleet-publish-retry %v must stay within half the duplicate window (%v)", f.PublishRetry, c.Topology.DuplicateWindow))
	}
	if strings.TrimSpace(f.Consumer) == "" {
		errs = append(errs, errors.New("fleet-consumer must not be empty"))
	}
	getenv := c.getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	devs, err := fleet.LoadFile(f.File, getenv)
	if err != nil {
		errs = append(errs, err)
	}
	c.devices = devs
	return errs
}

func (c *Config) csvConfig() csvsource.Config {
	var layouts []string
	if c.CSV.TimeLayouts != "" {
		layouts = strings.Split(c.CSV.TimeLayouts, "|")
	}
	return csvsource.Config{
		Name: c.CSV.Name, Dir: c.CSV.Dir, DoneDir: c.CSV.DoneDir, Mapping: c.mapping,
		Defaults:   csvsource.Defaults{Site: c.CSV.Site, Device: c.CSV.Device, TimeZone: c.CSV.TimeZone, TimeLayouts: layouts},
		Settle:     c.CSV.Settle,
		ChunkLines: c.CSV.ChunkLines,
		// Re-publishing must stay inside the stream's duplicate window.
		PublishRetry: c.Topology.DuplicateWindow / 2,
	}
}

func (c *Config) fleetConfig() fleet.Config {
	f := c.Fleet
	return fleet.Config{
		Devices: c.devices, Concurrency: f.Concurrency, MaxLive: f.MaxLive, ReadBudget: int64(f.ReadBudgetMB) << 20,
		Timeout: f.Timeout, ChunkTimeout: f.ChunkTimeout, Retries: noneIfZero(f.Retries), DialRetries: noneIfZero(f.DialRetries),
		Breaker: fleet.BreakerPolicy{
			BackoffBase: f.BackoffBase, BackoffMax: f.BackoffMax, Failures: f.BreakerFailures,
			Cooldown: f.BreakerCooldown, MaxCooldown: f.BreakerMaxCooldown, Unauthorized: f.UnauthorizedCooldown,
		},
		PublishRetry: f.PublishRetry, Stream: c.Topology.FleetStream, Consumer: f.Consumer,
		Lease: f.Lease, Prune: f.Prune, Replica: f.Replica,
	}
}

// noneIfZero maps a flag's 0 ("no retries") to fleet.Config's negative
// ("none"; there 0 selects the default).
func noneIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
