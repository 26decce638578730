// Package service is the start-up and shutdown every punchflow service
// shares: common flags, logger, metrics, the ops server, the NATS connection,
// topology provisioning, and the ordered graceful stop of STYLE.md.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-retry"
	"golang.org/x/sync/errgroup"

	"github.com/punchflow/punchflow/platform/config"
	"github.com/punchflow/punchflow/platform/logging"
	"github.com/punchflow/punchflow/platform/metrics"
	"github.com/punchflow/punchflow/platform/natsconn"
	"github.com/punchflow/punchflow/platform/ops"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/platform/version"
)

// Common are the settings every service takes.
type Common struct {
	ConfigFile      string
	HTTPAddr        string
	LogFormat       string
	LogLevel        string
	ShutdownTimeout time.Duration
	// Provision creates streams and buckets at start (dev, tests). In
	// production NACK resources own them and this is off.
	Provision bool
	NATS      natsconn.Options
	Topology  topology.Config
}

// RegisterFlags adds the common flags to fs.
func (c *Common) RegisterFlags(fs *flag.FlagSet, defaultHTTP string) {
	fs.StringVar(&c.ConfigFile, config.FileFlag, "", "optional YAML file of settings (keys are flag names)")
	fs.StringVar(&c.HTTPAddr, "http-addr", defaultHTTP, "address of the /healthz, /readyz and /metrics server")
	fs.StringVar(&c.LogFormat, "log-format", logging.FormatAuto, "log format: auto (text on a terminal, JSON otherwise), json or text")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "time allowed for a graceful drain; keep it below the pod's termination grace period")
	fs.BoolVar(&c.Provision, "provision", true, "create or update streams and KV buckets at start")
	c.NATS.RegisterFlags(fs)
	c.Topology.RegisterFlags(fs)
}

// Validate checks the common settings.
func (c *Common) Validate() error {
	var errs []error
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("shutdown-timeout must be positive"))
	}
	errs = append(errs, c.NATS.Validate(), c.Topology.Validate())
	return errors.Join(errs...)
}

// Parse loads fs from args, environment and file. It returns help=true when
// the user asked for -h or --version (the caller returns nil), and an error
// that says what to fix otherwise. --version, which Parse adds to fs unless
// fs defines it, prints the build (platform/version) to fs's output, the
// stream -h writes to; it is taken from the command line only.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string, validate func() error) (help bool, err error) {
	showVersion := new(bool)
	if fs.Lookup(version.Flag) == nil {
		fs.BoolVar(showVersion, version.Flag, false, "print the version, commit and build date, and exit")
	}
	if err := config.Load(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, fmt.Errorf("%s: %w", fs.Name(), err)
	}
	if *showVersion {
		fmt.Fprintln(fs.Output(), version.Get().String(fs.Name()))
		return true, nil
	}
	if err := validate(); err != nil {
		return false, fmt.Errorf("%s: invalid configuration: %w", fs.Name(), err)
	}
	return false, nil
}

// Runtime is what a started service holds: call Run, which owns the
// lifecycle and closes everything it opened.
type Runtime struct {
	Name     string
	Log      *slog.Logger
	Registry *prometheus.Registry
	Metrics  *metrics.Pipeline
	Ops      *ops.Server
	NC       *nats.Conn
	JS       jetstream.JetStream
	common   Common
}

// Start sets up logging, metrics, the ops listener and NATS, and provisions
// the topology when asked (retrying until NATS answers or ctx ends). It logs
// the effective configuration with secrets masked.
func Start(ctx context.Context, name string, c Common, fs *flag.FlagSet, stderr io.Writer) (*Runtime, error) {
	log, err := logging.New(stderr, c.LogFormat, c.LogLevel, name)
	if err != nil {
		return nil, err
	}
	build := version.Get()
	log.Info("starting", "version", build.Version, "commit", build.Commit, "built", build.Date, "go", build.GoVersion,
		slog.Group("config", attrsAny(config.Attrs(fs))...))
	reg := prometheus.NewRegistry()
	m := metrics.NewPipeline(reg, name)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "punchflow", Name: "build_info",
		Help:        "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{"service": name, "version": build.Version, "commit": build.Commit, "goversion": build.GoVersion},
	}, func() float64 { return 1 }))
	srv := ops.New(reg, log)
	if err := srv.Listen(c.HTTPAddr); err != nil {
		return nil, err
	}
	nc, err := natsconn.Connect(c.NATS, "punchflow-"+name, log, m)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	srv.AddCheck("nats", func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected (%s)", nc.Status())
		}
		return nil
	})
	rt := &Runtime{Name: name, Log: log, Registry: reg, Metrics: m, Ops: srv, NC: nc, JS: js, common: c}
	if c.Provision {
		if err := rt.provision(ctx); err != nil {
			nc.Close()
			return nil, err
		}
	}
	log.Info("started", "http", srv.Addr())
	return rt, nil
}

func (r *Runtime) provision(ctx context.Context) error {
	b := retry.WithCappedDuration(5*time.Second, retry.NewExponential(200*time.Millisecond))
	attempt := 0
	return retry.Do(ctx, b, func(ctx context.Context) error {
		attempt++
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := topology.Ensure(cctx, r.JS, r.common.Topology); err != nil {
			r.Log.Warn("provisioning streams, will retry", "attempt", attempt, "err", err)
			return retry.RetryableError(err)
		}
		return nil
	})
}

// Worker is one long-running part of a service (a consume loop, a poller).
// It returns nil after draining when ctx is cancelled.
type Worker func(ctx context.Context) error

// Run serves the ops endpoints and runs the workers until ctx is cancelled or
// one of them fails, then stops in order within the shutdown timeout:
// readiness false, workers drained (they see ctx cancelled), pending async
// publishes awaited, the NATS connection drained, the ops server stopped.
// Closing databases is the caller's, after Run returns. A cancellation of ctx
// is a clean stop and returns nil.
func (r *Runtime) Run(ctx context.Context, workers ...Worker) error {
	opsCtx, stopOps := context.WithCancel(context.Background())
	opsDone := make(chan error, 1)
	go func() { opsDone <- r.Ops.Serve(opsCtx) }()

	// Readiness turns false before any worker sees its context cancelled,
	// whether the stop comes from ctx or from a failing worker.
	wctx, cancelWorkers := context.WithCancel(context.Background())
	defer cancelWorkers()
	var stoppedAt time.Time
	stop := sync.OnceFunc(func() {
		stoppedAt = time.Now()
		r.Ops.Drain()
		cancelWorkers()
	})
	var g errgroup.Group
	for _, w := range workers {
		g.Go(func() error {
			err := w(wctx)
			if err != nil {
				stop()
			}
			return err
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-wctx.Done():
		}
	}()
	err := g.Wait()
	stop()
	r.Log.Info("stopping: workers drained, flushing NATS")

	// One budget for the whole stop, counted from its start: the workers'
	// drains (each bounded by ShutdownTimeout) spend part of it.
	deadline := stoppedAt.Add(r.common.ShutdownTimeout)
	select {
	case <-r.JS.PublishAsyncComplete():
	case <-time.After(time.Until(deadline)):
		r.Log.Warn("shutdown timeout while waiting for async publishes", "pending", r.JS.PublishAsyncPending())
	}
	r.drainNATS(deadline)
	stopOps()
	if oerr := <-opsDone; oerr != nil && err == nil {
		err = oerr
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil
	}
	if err != nil {
		r.Log.Error("stopped with error", "err", err)
	} else {
		r.Log.Info("stopped cleanly")
	}
	return err
}

func (r *Runtime) drainNATS(deadline time.Time) {
	if r.NC.IsClosed() {
		return
	}
	if err := r.NC.Drain(); err != nil {
		r.NC.Close()
		return
	}
	for !r.NC.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	r.NC.Close()
}

// Close releases the NATS connection when Run was never called (a start-up
// failure after Start).
func (r *Runtime) Close() {
	if !r.NC.IsClosed() {
		r.NC.Close()
	}
}

// ShutdownTimeout is the configured drain budget.
func (r *Runtime) ShutdownTimeout() time.Duration { return r.common.ShutdownTimeout }

func attrsAny(attrs []slog.Attr) []any {
	out := make([]any, len(attrs))
	for i, a := range attrs {
		out[i] = a
	}
	return out
}
