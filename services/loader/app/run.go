// Package app is the loader service: one durable consumer per sink, micro-
// batches flushed by rows, bytes or age, one transaction per batch, and an
// ack only after the commit.
package app

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/punchflow/punchflow/platform/dispose"
	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
	"github.com/punchflow/punchflow/services/loader/internal/sink/postgres"
	"github.com/punchflow/punchflow/services/loader/internal/sink/sqlite"
)

// Run is the loader's whole program; see cli.RunFunc.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loader", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	cfg.register(fs)
	if help, err := service.Parse(fs, args, getenv, cfg.Validate); help || err != nil {
		return err
	}
	rt, err := service.Start(ctx, "loader", cfg.Common, fs, stderr)
	if err != nil {
		return err
	}
	sinks, err := openSinks(ctx, cfg, rt)
	defer func() {
		for _, s := range sinks {
			if cerr := s.sink.Close(); cerr != nil {
				rt.Log.Warn("close sink", "sink", s.name, "err", cerr)
			}
		}
	}()
	if err != nil {
		rt.Close()
		return err
	}
	var workers []service.Worker
	for _, s := range sinks {
		durable := cfg.DurablePrefix + "-" + s.name
		cons, err := rt.BindConsumer(ctx, cfg.Topology.CleanStream, topology.Consumer(topology.ConsumerOptions{
			Durable:        durable,
			FilterSubjects: cfg.subjects(),
			AckWait:        cfg.AckWait,
			// A database outage must not spend a delivery budget: the loader
			// retries in place and the consumer never gives up on a message.
			MaxDeliver:    -1,
			MaxAckPending: cfg.MaxAckPending,
		}))
		if err != nil {
			rt.Close()
			return err
		}
		w := &worker{
			name: s.name, sink: s.sink, cons: cons, rt: rt, policy: cfg.Batch, ackWait: cfg.AckWait,
			dispose: dispose.New(rt.JS, proto.StageLoad, 0, rt.Metrics, rt.Log.With("sink", s.name)),
			log:     rt.Log.With("sink", s.name),
		}
		workers = append(workers, w.run)
	}
	return rt.Run(ctx, workers...)
}

type namedSink struct {
	name string
	sink sink.Sink
}

// openSinks opens every configured sink (running its migrations) and adds a
// readiness check for each.
func openSinks(ctx context.Context, cfg Config, rt *service.Runtime) ([]namedSink, error) {
	var out []namedSink
	if cfg.PostgresURL != "" {
		s, err := postgres.Open(ctx, cfg.PostgresURL, rt.Log.With("sink", "postgres"))
		if err != nil {
			return out, fmt.Errorf("postgres sink: %w", err)
		}
		out = append(out, namedSink{"postgres", s})
	}
	if cfg.SQLitePath != "" {
		// FULL: a batch is acknowledged to JetStream only after its commit, so the
		// commit must survive a power failure.
		s, err := sqlite.Open(ctx, cfg.SQLitePath, rt.Log.With("sink", "sqlite"), sqlite.WithSynchronousFull())
		if err != nil {
			return out, fmt.Errorf("sqlite sink: %w", err)
		}
		out = append(out, namedSink{"sqlite", s})
	}
	for _, s := range out {
		rt.Ops.AddCheck("sink "+s.name, s.sink.Ping)
	}
	return out, nil
}
