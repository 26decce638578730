package app

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/batch"
	"github.com/punchflow/punchflow/services/loader/internal/daily"
	"github.com/punchflow/punchflow/services/loader/internal/recordtable"
	"github.com/punchflow/punchflow/services/loader/internal/sink/mysql"
)

// Sink names, as in consumer names (<durable-prefix>-<sink>), load_batches
// and --sink-subjects.
const (
	sinkPostgres = "postgres"
	sinkMySQL    = "mysql"
	sinkSQLite   = "sqlite"
)

// Config is the loader's configuration.
type Config struct {
	service.Common
	SQLitePath    string
	PostgresURL   string
	MySQLDSN      string
	MySQLMethod   string
	DurablePrefix string
	// Subjects are what every sink takes unless SinkSubjects names it.
	Subjects string
	// SinkSubjects routes subjects per sink: "postgres=clean.record.>,
	// mysql=clean.attendance.>"; a sink named several times takes every
	// subject given.
	SinkSubjects  string
	Batch         batch.Policy
	AckWait       time.Duration
	MaxAckPending int
	// Writers is how many batches each sink writes at once.
	Writers int

	DailyDebounce   time.Duration
	DailyShiftStart string
	DailyLateGrace  time.Duration

	// RecordTypes is the transformer's rules file, whose records section
	// types the fields of each source (package recordtable).
	RecordTypes string

	// Set by Validate.
	daily  daily.Rules
	routes map[string][]string
	tables recordtable.Set
}

func (c *Config) register(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs, ":8083")
	c.registerSinks(fs)
	fs.IntVar(&c.Batch.MaxRows, "batch-rows", 1000, "flush a batch at this many rows")
	fs.IntVar(&c.Batch.MaxBytes, "batch-bytes", 1<<20, "flush a batch at this many bytes of messages")
	fs.DurationVar(&c.Batch.MaxAge, "batch-age", 200*time.Millisecond, "flush a batch when its oldest row has waited this long")
	fs.DurationVar(&c.AckWait, "ack-wait", time.Minute, "how long a delivered message may stay unacknowledged; the loader sends in-progress acks every third of it for every message it holds, so a slow commit or an outage never causes redeliveries")
	fs.IntVar(&c.MaxAckPending, "max-ack-pending", 0, "unacknowledged messages per sink consumer (default: 4 × batch-rows)")
	fs.IntVar(&c.Writers, "writers", 2, "batches each sink writes at once (each in its own transaction), so that the next batch is written while one waits on its commit")
	fs.DurationVar(&c.DailyDebounce, "daily-debounce", time.Minute, "daily attendance: a punch this soon after the last one kept is a double punch and is ignored")
	fs.StringVar(&c.DailyShiftStart, "daily-shift-start", "09:00", "daily attendance: shift start for late minutes, HH:MM in the punch's time zone, then optional site=HH:MM overrides (09:00,plant-2=22:00)")
	fs.DurationVar(&c.DailyLateGrace, "daily-late-grace", 0, "daily attendance: a first in this late or less is not late")
	fs.StringVar(&c.RecordTypes, "record-types", "", "the transformer's rules file: each source its records section maps gets a table records_<source> with a column per field, in the field's type (empty: every record goes to business_records)")
}

// registerSinks adds the flags that name the sinks and their routes, which
// `loader status` shares.
func (c *Config) registerSinks(fs *flag.FlagSet) {
	fs.StringVar(&c.SQLitePath, "sqlite-path", "punchflow.db", "SQLite database file, the embedded default sink (empty: no SQLite sink)")
	fs.StringVar(&c.PostgresURL, "postgres-url", "", "PostgreSQL URL, e.g. postgres://user@host:5432/db (empty: no PostgreSQL sink)")
	fs.StringVar(&c.MySQLDSN, "mysql-dsn", "", "MySQL/MariaDB DSN, e.g. user:password@tcp(host:3306)/db (empty: no MySQL sink)")
	fs.StringVar(&c.MySQLMethod, "mysql-method", "", "how the MySQL sink sends rows: load-data (LOAD DATA LOCAL INFILE) or insert (multi-row INSERT); default load-data when the server allows it")
	fs.StringVar(&c.DurablePrefix, "durable-prefix", "loader", "durable consumer names are <prefix>-<sink>, one per sink")
	fs.StringVar(&c.Subjects, "subjects", proto.PrefixClean+".>", "subjects every sink takes unless --sink-subjects names it, comma-separated")
	fs.StringVar(&c.SinkSubjects, "sink-subjects", "", "subjects per sink, sink=subject pairs, comma-separated: postgres=clean.record.>,mysql=clean.attendance.>,sqlite=clean.> (a sink named several times takes each subject)")
}

// Validate checks the configuration, fills in derived settings and reports
// every problem at once.
func (c *Config) Validate() error {
	var errs []error
	errs = append(errs, c.validateSinks())
	if err := c.Batch.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.AckWait < time.Second {
		errs = append(errs, errors.New("ack-wait must be at least 1s"))
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 4 * c.Batch.MaxRows
	}
	if c.MaxAckPending < c.Batch.MaxRows {
		errs = append(errs, errors.New("max-ack-pending must be at least batch-rows, or batches never fill"))
	}
	if c.Writers < 1 || c.Writers > 16 {
		errs = append(errs, fmt.Errorf("writers is %d: use 1 to 16", c.Writers))
	}
	c.daily = daily.Rules{Debounce: c.DailyDebounce, LateGrace: c.DailyLateGrace}
	if err := c.daily.ParseShiftStarts(c.DailyShiftStart); err != nil {
		errs = append(errs, fmt.Errorf("daily-shift-start: %w", err))
	}
	if err := c.daily.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("daily rules: %w", err))
	}
	if c.RecordTypes != "" {
		tables, err := recordtable.Load(c.RecordTypes)
		if err != nil {
			errs = append(errs, fmt.Errorf("record-types: %w", err))
		}
		c.tables = tables
	}
	errs = append(errs, c.Common.Validate())
	return errors.Join(errs...)
}

// validateSinks checks the sink flags and parses the routes.
func (c *Config) validateSinks() error {
	var errs []error
	sinks := c.sinks()
	if len(sinks) == 0 {
		errs = append(errs, errors.New("no sink: give --sqlite-path, --postgres-url and/or --mysql-dsn"))
	}
	if c.PostgresURL != "" {
		if _, err := pgxpool.ParseConfig(c.PostgresURL); err != nil {
			errs = append(errs, fmt.Errorf("postgres-url: %w", err))
		}
	}
	if c.MySQLDSN != "" {
		if cfg, err := gomysql.ParseDSN(c.MySQLDSN); err != nil {
			errs = append(errs, fmt.Errorf("mysql-dsn: %w", err))
		} else if cfg.DBName == "" {
			errs = append(errs, errors.New("mysql-dsn names no database: user:password@tcp(host:3306)/dbname"))
		}
	}
	switch mysql.Method(c.MySQLMethod) {
	case "", mysql.LoadData, mysql.Insert:
	default:
		errs = append(errs, fmt.Errorf("mysql-method %q: use %s or %s", c.MySQLMethod, mysql.LoadData, mysql.Insert))
	}
	if c.DurablePrefix == "" {
		errs = append(errs, errors.New("durable-prefix must not be empty"))
	}
	def := splitList(c.Subjects)
	if len(def) == 0 {
		errs = append(errs, errors.New("subjects must name at least one subject"))
	}
	routes := map[string][]string{}
	for _, item := range splitList(c.SinkSubjects) {
		name, subject, ok := strings.Cut(item, "=")
		name, subject = strings.TrimSpace(name), strings.TrimSpace(subject)
		switch {
		case !ok || name == "" || subject == "":
			errs = append(errs, fmt.Errorf("sink-subjects item %q is not sink=subject", item))
		case !slices.Contains(sinks, name):
			errs = append(errs, fmt.Errorf("sink-subjects names sink %q, which is not configured (configured: %s)", name, strings.Join(sinks, ", ")))
		default:
			routes[name] = append(routes[name], subject)
		}
	}
	for _, name := range sinks {
		if _, ok := routes[name]; !ok {
			routes[name] = def
		}
		if err := checkFilters(routes[name]); err != nil {
			errs = append(errs, fmt.Errorf("sink %s: %w", name, err))
		}
	}
	c.routes = routes
	return errors.Join(errs...)
}

// sinks returns the names of the configured sinks.
func (c *Config) sinks() []string {
	var out []string
	if c.PostgresURL != "" {
		out = append(out, sinkPostgres)
	}
	if c.MySQLDSN != "" {
		out = append(out, sinkMySQL)
	}
	if c.SQLitePath != "" {
		out = append(out, sinkSQLite)
	}
	return out
}

// durable is the consumer name of sink.
func (c *Config) durable(sink string) string { return c.DurablePrefix + "-" + sink }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// checkFilters refuses subjects outside clean.> and filters that overlap,
// which JetStream would refuse on a consumer with a less helpful message.
func checkFilters(subjects []string) error {
	var errs []error
	for i, s := range subjects {
		if s != proto.PrefixClean+".>" && !strings.HasPrefix(s, proto.PrefixClean+".") || strings.ContainsAny(s, " \t") {
			errs = append(errs, fmt.Errorf("subject %q is not a subject of the clean stream (clean.attendance.<site>, clean.record.<source>, wildcards * and >)", s))
			continue
		}
		for _, o := range subjects[:i] {
			if overlap(s, o) {
				errs = append(errs, fmt.Errorf("subjects %q and %q overlap: give only the wider one", o, s))
			}
		}
	}
	return errors.Join(errs...)
}

// overlap reports whether some subject matches both filters.
func overlap(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(at) && i < len(bt); i++ {
		switch {
		case at[i] == ">" || bt[i] == ">":
			return true
		case at[i] == "*" || bt[i] == "*" || at[i] == bt[i]:
		default:
			return false
		}
	}
	return len(at) == len(bt)
}
