// Package app is the loader service: one durable consumer per sink, micro-
// batches flushed by rows, bytes or age, one transaction per batch, and an
// ack only after the commit. `loader status` reports on a running loader.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	// The daily summary computes late minutes in each punch's own zone: the
	// zone database is built in, so that a container without one still
	// knows every zone the transformer does.
	_ "time/tzdata"

	"github.com/sethvargo/go-retry"
	"golang.org/x/sync/errgroup"

	"github.com/punchflow/punchflow/platform/dispose"
	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/daily"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
	"github.com/punchflow/punchflow/services/loader/internal/sink/mysql"
	"github.com/punchflow/punchflow/services/loader/internal/sink/postgres"
	"github.com/punchflow/punchflow/services/loader/internal/sink/sqlite"
)

// Run is the loader's whole program; see cli.RunFunc. With "status" as its
// first argument it prints the loader's status instead (see runStatus).
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "status" {
		return runStatus(ctx, args[1:], getenv, stdout, stderr)
	}
	fs := flag.NewFlagSet("loader", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: loader [flags]\n       loader status [flags] (see loader status -h)\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var cfg Config
	cfg.register(fs)
	if help, err := service.Parse(fs, args, getenv, cfg.Validate); help || err != nil {
		return err
	}
	rt, err := service.Start(ctx, "loader", cfg.Common, fs, stderr)
	if err != nil {
		return err
	}
	// The sinks open inside Run, so that /healthz answers while a database
	// is still unreachable; /readyz stays false until every sink is open.
	var (
		opened atomic.Bool
		sinks  []namedSink
	)
	rt.Ops.AddCheck("sinks", func(context.Context) error {
		if !opened.Load() {
			return errors.New("not open yet")
		}
		return nil
	})
	load := func(ctx context.Context) error {
		var err error
		sinks, err = openSinks(ctx, cfg, rt)
		if err != nil {
			if ctx.Err() != nil {
				rt.Log.Info("stopped while opening the sinks")
				return nil
			}
			return err
		}
		opened.Store(true)
		zones := daily.New(cfg.daily)
		g, gctx := errgroup.WithContext(ctx)
		for _, s := range sinks {
			cons, err := rt.BindConsumer(ctx, cfg.Topology.CleanStream, topology.Consumer(topology.ConsumerOptions{
				Durable:        cfg.durable(s.name),
				FilterSubjects: cfg.routes[s.name],
				AckWait:        cfg.AckWait,
				// A database outage must not spend a delivery budget: the loader
				// retries in place and the consumer never gives up on a message.
				MaxDeliver:    -1,
				MaxAckPending: cfg.MaxAckPending,
			}))
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				return err
			}
			log := rt.Log.With("sink", s.name)
			// Each sink's dead letters name it, so that two sinks refusing a
			// message both keep theirs and `loader status` counts them per sink.
			disposer := dispose.New(rt.JS, proto.StageLoad, 0, rt.Metrics, log)
			disposer.Sink = s.name
			w := &worker{
				name: s.name, sink: s.sink, cons: cons, rt: rt, policy: cfg.Batch, ackWait: cfg.AckWait,
				dispose: disposer,
				zones:   zones,
				tables:  cfg.tables,
				log:     log,
				writers: cfg.Writers,
			}
			g.Go(func() error { return w.run(gctx) })
		}
		return g.Wait()
	}
	err = rt.Run(ctx, load)
	for _, s := range sinks {
		if cerr := s.sink.Close(); cerr != nil {
			rt.Log.Warn("close sink", "sink", s.name, "err", cerr)
		}
	}
	return err
}

type namedSink struct {
	name string
	sink sink.Sink
}

// openSinks opens every configured sink (running its migrations) and adds a
// readiness check for each. A database server that cannot be reached yet
// (it is restarting, the network is down) is retried with backoff until it
// answers or ctx ends, so that a loader started during an outage waits for
// it instead of exiting; the settings themselves were checked by Validate.
func openSinks(ctx context.Context, cfg Config, rt *service.Runtime) ([]namedSink, error) {
	var out []namedSink
	log := func(name string) *slog.Logger { return rt.Log.With("sink", name) }
	if cfg.PostgresURL != "" {
		s, err := openRetrying(ctx, log(sinkPostgres), func(ctx context.Context) (*postgres.Sink, error) {
			return postgres.Open(ctx, cfg.PostgresURL, log(sinkPostgres), postgres.WithDailyRules(cfg.daily), postgres.WithRecordTables(cfg.tables))
		})
		if err != nil {
			return out, fmt.Errorf("postgres sink: %w", err)
		}
		out = append(out, namedSink{sinkPostgres, s})
	}
	if cfg.MySQLDSN != "" {
		s, err := openRetrying(ctx, log(sinkMySQL), func(ctx context.Context) (*mysql.Sink, error) {
			return mysql.Open(ctx, cfg.MySQLDSN, log(sinkMySQL), mysql.WithDailyRules(cfg.daily), mysql.WithMethod(mysql.Method(cfg.MySQLMethod)),
				mysql.WithRecordTables(cfg.tables))
		})
		if err != nil {
			return out, fmt.Errorf("mysql sink: %w", err)
		}
		rt.Log.Info("mysql sink open", "method", s.Method())
		out = append(out, namedSink{sinkMySQL, s})
	}
	if cfg.SQLitePath != "" {
		// FULL: a batch is acknowledged to JetStream only after its commit, so the
		// commit must survive a power failure.
		s, err := sqlite.Open(ctx, cfg.SQLitePath, log(sinkSQLite), sqlite.WithSynchronousFull(), sqlite.WithDailyRules(cfg.daily),
			sqlite.WithRecordTables(cfg.tables))
		if err != nil {
			return out, fmt.Errorf("sqlite sink: %w", err)
		}
		out = append(out, namedSink{sinkSQLite, s})
	}
	for _, s := range out {
		rt.Ops.AddCheck("sink "+s.name, s.sink.Ping)
	}
	return out, nil
}

// openRetrying calls open until it succeeds or ctx ends, backing off from
// half a second to ten seconds between attempts.
func openRetrying[S any](ctx context.Context, log *slog.Logger, open func(context.Context) (S, error)) (S, error) {
	var s S
	attempt := 0
	b := retry.WithCappedDuration(10*time.Second, retry.NewExponential(500*time.Millisecond))
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		attempt++
		var err error
		if s, err = open(ctx); err != nil {
			log.Warn("database not available yet, retrying", "attempt", attempt, "err", err)
			return retry.RetryableError(err)
		}
		return nil
	})
	return s, err
}
