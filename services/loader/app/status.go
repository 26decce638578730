package app

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" database/sql driver
	"github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite" // "sqlite" database/sql driver

	"github.com/punchflow/punchflow/platform/natsconn"
	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/services/loader/internal/status"
)

// statusConfig is the configuration of `loader status`: the service's
// settings that locate the sinks and NATS, plus how to report.
type statusConfig struct {
	Config
	JSON     bool
	Batches  int
	Window   time.Duration
	DLQLimit int
	Timeout  time.Duration
}

func (c *statusConfig) register(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs, ":8083")
	c.registerSinks(fs)
	fs.BoolVar(&c.JSON, "json", false, "print JSON instead of a table")
	fs.IntVar(&c.Batches, "batches", 5, "recent batches to show per sink")
	fs.DurationVar(&c.Window, "window", time.Hour, "how far back to count batches")
	fs.IntVar(&c.DLQLimit, "dlq-limit", 100000, "read at most this many dead letters to count them")
	fs.DurationVar(&c.Timeout, "timeout", 20*time.Second, "give up on the whole report after this long")
}

func (c *statusConfig) Validate() error {
	var errs []error
	errs = append(errs, c.validateSinks(), c.Common.Validate())
	if c.Batches < 0 || c.Window <= 0 || c.DLQLimit < 0 || c.Timeout <= 0 {
		errs = append(errs, errors.New("batches and dlq-limit must not be negative, window and timeout must be positive"))
	}
	return errors.Join(errs...)
}

// runStatus prints, for every configured sink, the recent batches from its
// database, its consumer's lag and its dead letters. It connects to what
// the service's own flags, environment and configuration file name, and
// reports an unreachable database or consumer in the report instead of
// failing; only NATS being unreachable fails it.
func runStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loader status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: loader status [flags]\n\nRecent batches, consumer lag and dead letters per sink. Takes the service's own\nflags (and PUNCHFLOW_* environment, --config file) to find the sinks and NATS.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var cfg statusConfig
	cfg.register(fs)
	if help, err := service.Parse(fs, args, getenv, cfg.Validate); help || err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	opts := cfg.NATS
	nc, err := natsconn.Connect(opts, "punchflow-loader-status", slog.New(slog.DiscardHandler), discardCounter{})
	if err != nil {
		return fmt.Errorf("loader status: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("loader status: %w", err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("loader status: JetStream at %s does not answer: %w", opts.URLs, err)
	}

	now := time.Now().UTC()
	report := status.Report{GeneratedAt: now, Window: cfg.Window.String()}
	report.DeadLetters = status.CountDeadLetters(ctx, js, cfg.Topology.DLQStream, cfg.DLQLimit)
	for _, name := range cfg.sinks() {
		s := status.SinkStatus{
			Sink:        name,
			Consumer:    status.ReadConsumer(ctx, js, cfg.Topology.CleanStream, cfg.durable(name), cfg.routes[name]),
			DeadLetters: report.DeadLetters.BySink[name],
		}
		if s.DeadLetters == nil {
			s.DeadLetters = map[string]uint64{}
		}
		db, dialect, err := cfg.openForStatus(name)
		if err == nil {
			s.Batches, err = status.ReadBatches(ctx, db, dialect, name, now.Add(-cfg.Window), cfg.Batches)
			_ = db.Close()
		}
		if err != nil {
			s.Batches.Error = err.Error()
		}
		report.Sinks = append(report.Sinks, s)
	}
	if cfg.JSON {
		return report.WriteJSON(stdout)
	}
	return report.WriteTable(stdout)
}

// openForStatus opens a plain handle on sink's database, without migrating
// it (and read-only for SQLite).
func (c *Config) openForStatus(name string) (*sql.DB, status.Dialect, error) {
	switch name {
	case sinkPostgres:
		db, err := sql.Open("pgx", c.PostgresURL)
		return db, status.Postgres, err
	case sinkMySQL:
		cfg, err := gomysql.ParseDSN(c.MySQLDSN)
		if err != nil {
			return nil, status.MySQL, fmt.Errorf("mysql-dsn: %w", err)
		}
		cfg.ParseTime, cfg.Loc = true, time.UTC
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		cfg.Params["time_zone"] = "'+00:00'"
		db, err := sql.Open("mysql", cfg.FormatDSN())
		return db, status.MySQL, err
	case sinkSQLite:
		p := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(c.SQLitePath)
		db, err := sql.Open("sqlite", "file:"+p+"?mode=ro&_pragma=busy_timeout(2000)")
		return db, status.SQLite, err
	}
	return nil, status.Dialect{}, fmt.Errorf("unknown sink %q", name)
}

type discardCounter struct{}

func (discardCounter) Inc(string) {}
