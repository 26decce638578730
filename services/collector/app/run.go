// Package app is the collector service: it runs the configured sources (a
// CSV folder, a fleet of ZK devices, HTTP API and SQL table sources, the
// ADMS push endpoint), publishes what they read to the raw stream, and
// publishes a heartbeat after every run or device session. "collector
// probe" checks one device before it joins a fleet; "collector backfill"
// re-reads a date range of the API and SQL sources.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-retry"

	"github.com/punchflow/punchflow/platform/dispose"
	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/adms"
	"github.com/punchflow/punchflow/services/collector/internal/backfill"
	"github.com/punchflow/punchflow/services/collector/internal/csvsource"
	"github.com/punchflow/punchflow/services/collector/internal/extract"
	"github.com/punchflow/punchflow/services/collector/internal/fleet"
	"github.com/punchflow/punchflow/services/collector/internal/publish"
	"github.com/punchflow/punchflow/services/collector/internal/sources"
)

// Run is the collector's whole program; see cli.RunFunc. "collector probe
// …" runs the device probe instead of the service (see runProbe).
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "probe" {
		return runProbe(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "backfill" {
		return backfill.Command(ctx, args[1:], getenv, stdout, stderr)
	}
	fs := flag.NewFlagSet("collector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := Config{getenv: getenv}
	cfg.register(fs)
	if help, err := service.Parse(fs, args, getenv, cfg.Validate); help || err != nil {
		return err
	}
	rt, err := service.Start(ctx, "collector", cfg.Common, fs, stderr)
	if err != nil {
		return err
	}
	kv, err := rt.JS.KeyValue(ctx, cfg.Topology.CheckpointBucket)
	if err != nil {
		rt.Close()
		return fmt.Errorf("checkpoint bucket %s: %w (start with --provision or create it)", cfg.Topology.CheckpointBucket, err)
	}
	dl := dispose.New(rt.JS, proto.StageCollect, 0, rt.Metrics, rt.Log)
	var workers []service.Worker
	if cfg.CSV.Dir != "" {
		src, err := csvsource.New(cfg.csvConfig(), rt.JS, dl, kv, rt.Metrics, rt.Log)
		if err != nil {
			rt.Close()
			return err
		}
		c := &collector{rt: rt, csv: src, poll: cfg.CSV.Poll, once: cfg.Once}
		workers = append(workers, c.loop)
	}
	if cfg.Fleet.File != "" {
		w, err := startFleet(ctx, rt, &cfg, kv, dl)
		if err != nil {
			rt.Close()
			return err
		}
		workers = append(workers, w)
	}
	if cfg.sources != nil {
		set, err := cfg.sources.Open(ctx, nil, getenv, rt.Log)
		if err != nil {
			rt.Close()
			return err
		}
		defer set.Close()
		workers = append(workers, sourceWorkers(rt, set, kv, dl, cfg.Once)...)
	}
	if cfg.ADMS.Addr != "" {
		w, err := startADMS(rt, &cfg, kv, dl)
		if err != nil {
			rt.Close()
			return err
		}
		workers = append(workers, w)
	}
	return rt.Run(ctx, workers...)
}

// sourceWorkers returns one worker per API or SQL source: its live loop, or
// with once a single run. One source's failures never hold another back.
func sourceWorkers(rt *service.Runtime, set sources.Set, kv jetstream.KeyValue, dl *dispose.Disposer, once bool) []service.Worker {
	var workers []service.Worker
	for _, e := range set {
		deps := extract.Deps{Pub: rt.JS, DLQ: dl, Metrics: rt.Metrics, Log: rt.Log}
		inc := extract.NewIncremental(e.Source, e.Settings.Schedule(), kv, deps, rt.JS)
		rt.Log.Info("source", "source", e.Source.Name(), "kind", e.Source.Kind(), "address", e.Source.Address(),
			"interval", e.Settings.Schedule().Interval, "lookback", e.Settings.Schedule().Lookback)
		if once {
			workers = append(workers, func(ctx context.Context) error {
				_, _ = inc.RunReported(ctx) // logged and reported in the heartbeat
				return nil
			})
			continue
		}
		workers = append(workers, inc.Loop)
	}
	return workers
}

// startADMS opens the ADMS listener (so a taken port fails the start),
// mounts the operators' API on the ops server, and returns the worker that
// serves devices.
func startADMS(rt *service.Runtime, cfg *Config, kv jetstream.KeyValue, dl *dispose.Disposer) (service.Worker, error) {
	srv, err := adms.New(cfg.admsConfig(), adms.Deps{JS: rt.JS, DLQ: dl, KV: kv, Metrics: rt.Metrics, Registerer: rt.Registry, Log: rt.Log})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.ADMS.Addr)
	if err != nil {
		return nil, fmt.Errorf("adms endpoint: listen on %s: %w", cfg.ADMS.Addr, err)
	}
	rt.Ops.Handle("/api/adms/", srv.AdminHandler())
	return func(ctx context.Context) error { return srv.ServeListener(ctx, ln) }, nil
}

// fleetAckTimeout bounds the wait for one punch's acknowledgement.
const fleetAckTimeout = 15 * time.Second

// startFleet builds the fleet and returns its worker: with --once one read of
// every device; otherwise the work-queue fleet, seeded and with its two
// consumers bound (readiness waits for them).
func startFleet(ctx context.Context, rt *service.Runtime, cfg *Config, kv fleet.Store, dl *dispose.Disposer) (service.Worker, error) {
	// The fleet's own JetStream context bounds how long an asynchronous
	// publish waits for its acknowledgement, so that a punch whose
	// acknowledgement was lost is published again instead of holding its
	// session forever.
	js, err := jetstream.New(rt.NC, jetstream.WithPublishAsyncTimeout(fleetAckTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	fl, err := fleet.New(cfg.fleetConfig(), fleet.Deps{
		JS: js, NC: rt.NC, KV: kv, DLQ: dl, Metrics: rt.Metrics, Registerer: rt.Registry, Log: rt.Log,
	})
	if err != nil {
		return nil, err
	}
	for _, d := range fl.Devices() {
		rt.Log.Debug("fleet device", "device", d)
	}
	if cfg.Once {
		return func(ctx context.Context) error {
			sum, err := fl.SyncOnce(ctx)
			rt.Log.Info("fleet read once", "devices", sum.Devices, "failed", sum.Failed, "published", sum.Published, "rejected", sum.Rejected)
			if err != nil && ctx.Err() == nil {
				rt.Log.Error("some devices could not be read", "err", err)
			}
			return nil
		}, nil
	}
	b := retry.WithMaxDuration(time.Minute, retry.WithCappedDuration(5*time.Second, retry.NewExponential(200*time.Millisecond)))
	if err := retry.Do(ctx, b, func(ctx context.Context) error {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := fl.Seed(sctx); err != nil {
			rt.Log.Warn("seeding the fleet work queue, will retry", "err", err)
			return retry.RetryableError(err)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("seed fleet stream %s (start with --provision or create it): %w", cfg.Topology.FleetStream, err)
	}
	pollCfg, liveCfg := fl.ConsumerConfigs()
	poll, err := rt.BindConsumer(ctx, cfg.Topology.FleetStream, pollCfg)
	if err != nil {
		return nil, err
	}
	live, err := rt.BindConsumer(ctx, cfg.Topology.FleetStream, liveCfg)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return fl.Run(ctx, poll, live) }, nil
}

type collector struct {
	rt   *service.Runtime
	csv  *csvsource.Source
	poll time.Duration
	once bool
}

// loop runs the CSV source every poll interval until ctx ends (or once).
func (c *collector) loop(ctx context.Context) error {
	t := time.NewTicker(c.poll)
	defer t.Stop()
	for {
		c.runCSV(ctx)
		if c.once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *collector) runCSV(ctx context.Context) {
	runID := proto.NewCorrelationID()
	start := time.Now()
	res, err := c.csv.RunOnce(ctx, runID)
	hb := proto.Heartbeat{
		Source: c.csv.Name(), Kind: proto.HeartbeatSource, Address: c.csv.Dir(), RunID: runID,
		ObservedAt: time.Now().UTC(), Reachable: true,
		DurationMS: float64(time.Since(start).Microseconds()) / 1000, RecordsPublished: res.Published, RecordsRejected: res.Rejected,
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		c.rt.Log.Error("csv run failed", "source", c.csv.Name(), "run_id", runID, "err", err)
		c.rt.Metrics.Errors.WithLabelValues("csv").Inc()
		hb.ErrorClass, hb.Error = proto.ErrorClassIO, err.Error()
	}
	if res.Files > 0 || res.Rejected > 0 {
		c.rt.Log.Info("csv run", "source", c.csv.Name(), "run_id", runID, "files", res.Files, "skipped", res.Skipped,
			"published", res.Published, "rejected", res.Rejected, "duration", time.Since(start).Round(time.Millisecond))
	}
	publish.Heartbeat(context.WithoutCancel(ctx), c.rt.JS, hb, c.rt.Metrics, c.rt.Log)
}
