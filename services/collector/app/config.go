package app

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/services/collector/internal/adms"
	"github.com/punchflow/punchflow/services/collector/internal/csvsource"
	"github.com/punchflow/punchflow/services/collector/internal/fleet"
	"github.com/punchflow/punchflow/services/collector/internal/sources"
)

// Config is the collector's configuration. At least one source is required:
// a CSV folder (--csv-dir), a device fleet (--fleet), API and SQL sources
// (--sources-file), the ADMS push endpoint (--adms-addr), or several.
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
	// SourcesFile declares the HTTP API and SQL table sources (package
	// sources); each runs its live loop.
	SourcesFile string
	ADMS        struct {
		Addr       string
		Devices    string
		Delay      time.Duration
		ErrorDelay time.Duration
		Batched    bool
		AckTimeout time.Duration
		Heartbeat  time.Duration
	}
	// Once runs every source a single time and exits.
	Once bool

	mapping     csvsource.Mapping
	devices     []fleet.Device
	sources     *sources.File
	admsDevices []adms.Device
	getenv      func(string) string
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
	fs.StringVar(&c.SourcesFile, "sources-file", "", "YAML file declaring HTTP API and SQL table sources (api: [...], sql: [...]); each runs its live loop")
	fs.StringVar(&c.ADMS.Addr, "adms-addr", "", "address of the ADMS push endpoint for devices (/iclock/*), e.g. :8088 (off when empty)")
	fs.StringVar(&c.ADMS.Devices, "adms-devices", "", "YAML allow-list of ADMS devices: devices: [{serial, site, time_zone}]")
	fs.DurationVar(&c.ADMS.Delay, "adms-delay", 10*time.Second, "how often ADMS devices poll for commands (handshake option Delay)")
	fs.DurationVar(&c.ADMS.ErrorDelay, "adms-error-delay", 30*time.Second, "how long ADMS devices wait after a failed request (option ErrorDelay)")
	fs.BoolVar(&c.ADMS.Batched, "adms-batched", false, "ADMS devices upload every minute instead of each punch at once (option Realtime=0)")
	fs.DurationVar(&c.ADMS.AckTimeout, "adms-ack-timeout", 10*time.Second, "how long an ADMS upload waits for JetStream before the device is told to send it again")
	fs.DurationVar(&c.ADMS.Heartbeat, "adms-heartbeat", time.Minute, "most often a heartbeat is published per ADMS device")
	fs.BoolVar(&c.Once, "once", false, "run every source once and exit (the fleet reads every device once, without the work queue)")
}

// Validate checks the configuration and loads the fleet file.
func (c *Config) Validate() error {
	var errs []error
	if c.CSV.Dir == "" && c.Fleet.File == "" && c.SourcesFile == "" && c.ADMS.Addr == "" {
		errs = append(errs, errors.New("no source: give --csv-dir FOLDER (PUNCHFLOW_CSV_DIR), --fleet FILE (PUNCHFLOW_FLEET), --sources-file FILE (PUNCHFLOW_SOURCES_FILE), --adms-addr ADDR with --adms-devices FILE, or several"))
	}
	if c.SourcesFile != "" {
		f, err := sources.Load(c.SourcesFile)
		if err != nil {
			errs = append(errs, err)
		}
		c.sources = f
	}
	errs = append(errs, c.validateADMS()...)
	if c.CSV.Dir != "" {
		errs = append(errs, c.validateCSV()...)
	}
	if c.Fleet.File != "" {
		errs = append(errs, c.validateFleet()...)
	}
	errs = append(errs, c.Common.Validate())
	return errors.Join(errs...)
}

func (c *Config) validateADMS() []error {
	a := &c.ADMS
	switch {
	case a.Addr == "" && a.Devices == "":
		return nil
	case a.Addr == "":
		return []error{errors.New("adms-devices is set but adms-addr is not: give the address devices push to, e.g. --adms-addr :8088")}
	case a.Devices == "":
		return []error{errors.New("adms-addr needs --adms-devices FILE, the allow-list of device serials")}
	}
	var errs []error
	if c.Once {
		errs = append(errs, errors.New("adms-addr cannot be used with --once: devices push whenever they like"))
	}
	for name, v := range map[string]time.Duration{"adms-delay": a.Delay, "adms-error-delay": a.ErrorDelay, "adms-ack-timeout": a.AckTimeout, "adms-heartbeat": a.Heartbeat} {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	devs, err := adms.LoadDevices(a.Devices)
	if err != nil {
		errs = append(errs, err)
	}
	c.admsDevices = devs
	return errs
}

func (c *Config) admsConfig() adms.Config {
	a := c.ADMS
	return adms.Config{Devices: c.admsDevices, Delay: a.Delay, ErrorDelay: a.ErrorDelay, Batched: a.Batched,
		AckTimeout: a.AckTimeout, HeartbeatEvery: a.Heartbeat}
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
