package app

import (
	"errors"
	"flag"
	"strings"
	"time"

	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/services/collector/internal/csvsource"
)

// Config is the collector's configuration.
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
	// Once runs every source a single time and exits.
	Once bool

	mapping csvsource.Mapping
}

func (c *Config) register(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs, ":8081")
	fs.StringVar(&c.CSV.Name, "csv-name", "csv", "name of the CSV source (subjects, checkpoints, heartbeats)")
	fs.StringVar(&c.CSV.Dir, "csv-dir", "", "folder CSV punch files are dropped into (required)")
	fs.StringVar(&c.CSV.DoneDir, "csv-done-dir", "", "folder finished files are moved to (default: <csv-dir>/done)")
	fs.StringVar(&c.CSV.Columns, "csv-columns", "", "header mapping, e.g. user_id=EmpNo,device_time=Timestamp,state=Status (unmapped fields use their own names)")
	fs.StringVar(&c.CSV.TimeLayouts, "csv-time-layouts", "", "Go time layouts for device_time, separated by '|' (default: 2006-01-02 15:04:05 and common variants)")
	fs.StringVar(&c.CSV.Site, "csv-site", "", "site for files without a site column")
	fs.StringVar(&c.CSV.Device, "csv-device", "", "device serial for files without a device_serial column")
	fs.StringVar(&c.CSV.TimeZone, "csv-time-zone", "", "IANA time zone the devices are set to, when known")
	fs.DurationVar(&c.CSV.Poll, "csv-poll", 5*time.Second, "how often the folder is scanned")
	fs.DurationVar(&c.CSV.Settle, "csv-settle", time.Second, "ignore files modified more recently than this (still being copied)")
	fs.IntVar(&c.CSV.ChunkLines, "csv-chunk-lines", 1000, "lines published between checkpoints")
	fs.BoolVar(&c.Once, "once", false, "run every source once and exit")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.CSV.Dir == "" {
		errs = append(errs, errors.New("csv-dir is required: give --csv-dir FOLDER or PUNCHFLOW_CSV_DIR"))
	}
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
	errs = append(errs, c.Common.Validate())
	return errors.Join(errs...)
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
