package app

import (
	"errors"
	"flag"
	"strings"
	"time"

	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/services/loader/internal/batch"
)

// Config is the loader's configuration.
type Config struct {
	service.Common
	SQLitePath    string
	PostgresURL   string
	DurablePrefix string
	Subjects      string
	Batch         batch.Policy
	AckWait       time.Duration
	MaxAckPending int
}

func (c *Config) register(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs, ":8083")
	fs.StringVar(&c.SQLitePath, "sqlite-path", "punchflow.db", "SQLite database file, the embedded default sink (empty: no SQLite sink)")
	fs.StringVar(&c.PostgresURL, "postgres-url", "", "PostgreSQL URL, e.g. postgres://user@host:5432/db (empty: no PostgreSQL sink)")
	fs.StringVar(&c.DurablePrefix, "durable-prefix", "loader", "durable consumer names are <prefix>-<sink>, one per sink")
	fs.StringVar(&c.Subjects, "subjects", "clean.attendance.>", "subjects every sink loads, comma-separated")
	fs.IntVar(&c.Batch.MaxRows, "batch-rows", 1000, "flush a batch at this many rows")
	fs.IntVar(&c.Batch.MaxBytes, "batch-bytes", 1<<20, "flush a batch at this many bytes of messages")
	fs.DurationVar(&c.Batch.MaxAge, "batch-age", 200*time.Millisecond, "flush a batch when its oldest row has waited this long")
	fs.DurationVar(&c.AckWait, "ack-wait", time.Minute, "how long a delivered message may stay unacknowledged (in-progress acks extend it during slow commits)")
	fs.IntVar(&c.MaxAckPending, "max-ack-pending", 0, "unacknowledged messages per sink consumer (default: 4 × batch-rows)")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.SQLitePath == "" && c.PostgresURL == "" {
		errs = append(errs, errors.New("no sink: give --sqlite-path and/or --postgres-url"))
	}
	if c.DurablePrefix == "" {
		errs = append(errs, errors.New("durable-prefix must not be empty"))
	}
	if len(c.subjects()) == 0 {
		errs = append(errs, errors.New("subjects must name at least one subject"))
	}
	if err := c.Batch.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.AckWait < 3*time.Second {
		errs = append(errs, errors.New("ack-wait must be at least 3s"))
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 4 * c.Batch.MaxRows
	}
	if c.MaxAckPending < c.Batch.MaxRows {
		errs = append(errs, errors.New("max-ack-pending must be at least batch-rows, or batches never fill"))
	}
	errs = append(errs, c.Common.Validate())
	return errors.Join(errs...)
}

func (c *Config) subjects() []string {
	var out []string
	for _, s := range strings.Split(c.Subjects, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
