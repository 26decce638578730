package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/punchflow/punchflow/platform/metrics"
	"github.com/punchflow/punchflow/proto"
)

// Config configures a fleet. Zero values select the defaults named.
type Config struct {
	Devices []Device

	// Concurrency bounds the bulk reads (poll sessions and the reconciling
	// read of a live session) one replica runs at once (default 16).
	Concurrency int
	// MaxLive bounds the live devices one replica holds (default 256).
	MaxLive int
	// ReadBudget bounds the memory the bulk reads in progress may hold, in
	// bytes, estimated from the record counts before each read at
	// BytesPerRecord (default 48 MiB). A read larger than the whole budget
	// runs alone.
	ReadBudget int64

	// Timeout, ChunkTimeout and Retries are the zk client's per-request
	// timeout (a device's own timeout wins), per-chunk timeout and chunk
	// retries (defaults 5 s, 10 s, 2; a negative Retries is none).
	Timeout      time.Duration
	ChunkTimeout time.Duration
	Retries      int
	// DialRetries is how often a failed connect is retried within a session
	// (timeouts, refused or reset connections, a busy device; never a
	// refused comm key), after jittered exponential delays from DialBackoff
	// (defaults 2 and 200 ms; a negative DialRetries is none).
	DialRetries int
	DialBackoff time.Duration

	// Breaker is the per-device backoff and circuit breaker.
	Breaker BreakerPolicy
	// PublishRetry bounds how long unacknowledged punches are re-published
	// before the session fails (default 1 min; keep it well inside the
	// stream's duplicate window).
	PublishRetry time.Duration
	// PublishWindow is how many punches one session keeps unacknowledged
	// (default 512).
	PublishWindow int

	// Stream is the work-queue stream (topology FleetStream; default
	// "FLEET"), and Consumer the prefix of its two durable consumers,
	// <Consumer>_poll and <Consumer>_live (default "collector_fleet").
	Stream   string
	Consumer string
	// Lease is the consumers' AckWait: how long a device stays held by a
	// replica that stopped confirming it (default 30 s). A holder confirms
	// every Lease/4 and gives the device up by itself when it could not
	// confirm for 3/4 of it, so two replicas never talk to one device.
	Lease time.Duration
	// Handoff is the delay before a device a replica gave up (shutdown,
	// lost lease) is offered to the replicas again (default 1 s).
	Handoff time.Duration
	// Prune deletes work items of devices not in Devices when seeding.
	Prune bool
	// Replica names this replica in logs and device state (default: the
	// host name).
	Replica string
}

func (c *Config) withDefaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt(&c.Concurrency, 16)
	defInt(&c.MaxLive, 256)
	if c.ReadBudget <= 0 {
		c.ReadBudget = 48 << 20
	}
	def(&c.Timeout, 5*time.Second)
	def(&c.ChunkTimeout, 10*time.Second)
	if c.Retries < 0 {
		c.Retries = 0
	} else if c.Retries == 0 {
		c.Retries = 2
	}
	if c.DialRetries < 0 {
		c.DialRetries = 0
	} else if c.DialRetries == 0 {
		c.DialRetries = 2
	}
	def(&c.DialBackoff, 200*time.Millisecond)
	p, d := &c.Breaker, DefaultBreakerPolicy
	def(&p.BackoffBase, d.BackoffBase)
	def(&p.BackoffMax, d.BackoffMax)
	defInt(&p.Failures, d.Failures)
	def(&p.Cooldown, d.Cooldown)
	def(&p.MaxCooldown, d.MaxCooldown)
	def(&p.Unauthorized, d.Unauthorized)
	def(&c.PublishRetry, time.Minute)
	defInt(&c.PublishWindow, 512)
	if c.Stream == "" {
		c.Stream = "FLEET"
	}
	if c.Consumer == "" {
		c.Consumer = "collector_fleet"
	}
	def(&c.Lease, 30*time.Second)
	def(&c.Handoff, time.Second)
	if c.Replica == "" {
		c.Replica, _ = os.Hostname()
	}
}

// BytesPerRecord is the memory a bulk read is budgeted per attendance record:
// the dataset as received and the decoded records with their bytes.
const BytesPerRecord = 256

// Deps are what a fleet talks to.
type Deps struct {
	// JS publishes punches and heartbeats and owns the work-queue stream.
	// Give it a publish-async timeout (jetstream.WithPublishAsyncTimeout):
	// a punch whose acknowledgement never comes is then published again
	// instead of holding its session until the lease or ctx ends.
	JS jetstream.JetStream
	// NC confirms leases (synchronous progress acknowledgements).
	NC *nats.Conn
	// KV is the checkpoint bucket (topology CheckpointBucket).
	KV      Store
	DLQ     DeadLetterer
	Metrics *metrics.Pipeline
	// Registerer receives the fleet's own series; nil skips them.
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Fleet reads a fleet of devices. Run shares the devices with other replicas
// through the work-queue stream; SyncOnce reads every device once. A Fleet
// is safe for concurrent use, but run one of Run or SyncOnce at a time.
type Fleet struct {
	cfg     Config
	devices []*Device
	byWork  map[string]*Device // work subject → device
	js      jetstream.JetStream
	pub     Publisher
	nc      *nats.Conn
	kv      Store
	dlq     DeadLetterer
	metrics *metrics.Pipeline
	fm      *fleetMetrics
	log     *slog.Logger

	reads  chan struct{}       // bulk-read slots
	budget *semaphore.Weighted // memory of the bulk reads in progress
}

// New returns a fleet of cfg.Devices. It fails when there are no devices or
// a dependency is missing.
func New(cfg Config, d Deps) (*Fleet, error) {
	cfg.withDefaults()
	if len(cfg.Devices) == 0 {
		return nil, errors.New("fleet: no devices")
	}
	if d.JS == nil || d.KV == nil || d.DLQ == nil || d.Metrics == nil || d.Log == nil {
		return nil, errors.New("fleet: JS, KV, DLQ, Metrics and Log are required")
	}
	f := &Fleet{
		cfg: cfg, byWork: map[string]*Device{}, js: d.JS, pub: d.JS, nc: d.NC, kv: d.KV, dlq: d.DLQ,
		metrics: d.Metrics, fm: newFleetMetrics(d.Registerer), log: d.Log.With("replica", cfg.Replica),
		reads: make(chan struct{}, cfg.Concurrency), budget: semaphore.NewWeighted(cfg.ReadBudget),
	}
	for i := range cfg.Devices {
		dev := &cfg.Devices[i]
		if dev.Location == nil {
			dev.Location = time.UTC
		}
		if dev.Port == 0 {
			dev.Port = DefaultPort
		}
		if dev.Mode == "" {
			dev.Mode = ModePoll
		}
		if dev.PollInterval <= 0 {
			dev.PollInterval = DefaultPollInterval
		}
		if dev.Serial == "" || dev.Host == "" || dev.Site == "" {
			return nil, fmt.Errorf("fleet: device %d needs a serial, a host and a site", i+1)
		}
		f.devices = append(f.devices, dev)
		f.byWork[workSubject(dev)] = dev
	}
	return f, nil
}

// Devices returns the fleet's devices.
func (f *Fleet) Devices() []*Device { return f.devices }

// acquireRead takes a bulk-read slot and the memory budget of a log of
// records records; release gives both back.
func (f *Fleet) acquireRead(ctx context.Context, records int) (release func(), err error) {
	select {
	case f.reads <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	w := min(int64(max(records, 1))*BytesPerRecord, f.cfg.ReadBudget)
	if err := f.budget.Acquire(ctx, w); err != nil {
		<-f.reads
		return nil, err
	}
	return func() {
		f.budget.Release(w)
		<-f.reads
	}, nil
}

// Summary sums up a SyncOnce.
type Summary struct {
	Devices   int
	Failed    int
	Published int
	Rejected  int
}

// SyncOnce reads every device once, Concurrency at a time (a live device gets
// one reconciling read, as a poll), publishes what is new and a heartbeat per
// device, and returns when all are done. It does not use the work-queue
// stream: run it from one process only (--once, backfills, benchmarks).
// The error joins the devices' failures.
func (f *Fleet) SyncOnce(ctx context.Context) (Summary, error) {
	var (
		mu   sync.Mutex
		sum  = Summary{Devices: len(f.devices)}
		errs []error
		wg   sync.WaitGroup
	)
	slots := make(chan struct{}, f.cfg.Concurrency)
	for _, dev := range f.devices {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return sum, ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-slots }()
			r, err := f.serveOnce(ctx, dev)
			mu.Lock()
			defer mu.Unlock()
			sum.Published += r.published
			sum.Rejected += r.rejected
			if err != nil {
				sum.Failed++
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	return sum, errors.Join(errs...)
}

// serveOnce is one poll of dev with the breaker bookkeeping of serve.
func (f *Fleet) serveOnce(ctx context.Context, dev *Device) (*report, error) {
	var r *report
	var err error
	f.serve(ctx, dev, f.cfg.Replica, func(ctx context.Context, h *stateHandle) (*report, error) {
		r, err = f.poll(ctx, dev, h)
		return r, err
	})
	if r == nil {
		r = &report{}
		if err == nil {
			err = fmt.Errorf("device %s not read (circuit open or state unreadable)", dev.Serial)
		}
	}
	return r, err
}

// serve runs one session of dev through run (a poll, or a live session until
// it ends) with the device's breaker, and returns when the device is due
// again. holder names the replica and delivery for the device's state.
func (f *Fleet) serve(ctx context.Context, dev *Device, holder string, run func(context.Context, *stateHandle) (*report, error)) time.Duration {
	log := f.log.With("device", dev.Serial, "site", dev.Site)
	h, err := loadState(ctx, f.kv, dev)
	if err != nil {
		if ctx.Err() != nil {
			return f.cfg.Handoff
		}
		log.Error("device state unreadable; retrying later", "err", err)
		return Backoff(f.cfg.Breaker.BackoffBase, f.cfg.Breaker.BackoffMax, 1)
	}
	now := time.Now()
	dirty := false
	if fp := dev.fingerprint(); h.st.Config != fp {
		if h.st.Breaker.Failures > 0 {
			log.Info("device settings changed: circuit breaker reset")
		}
		h.st.Breaker, h.st.Config, dirty = Breaker{}, fp, true
	}
	if ok, wait := h.st.Breaker.Allow(now); !ok {
		log.Info("circuit open: not connecting", "until", h.st.Breaker.OpenUntil, "last_error_class", h.st.Breaker.LastClass)
		return wait
	}
	start := time.Now()
	r, err := run(ctx, h)
	class := ""
	if err != nil {
		class = classify(err, r != nil && r.reachable)
	}
	f.fm.session(dev.Mode, class, time.Since(start))
	switch {
	case errors.Is(err, errConflict):
		log.Warn("device taken over by another replica; giving it up", "err", err)
		return f.cfg.Handoff
	case ctx.Err() != nil:
		return f.cfg.Handoff // stopping, or the lease was lost: not the device's fault
	}
	delay := jitter(dev.PollInterval, 0.05)
	if err == nil {
		if h.st.Breaker.Failures > 0 {
			log.Info("device recovered", "after_failures", h.st.Breaker.Failures)
			h.st.Breaker.Success()
			dirty = true
		}
	} else {
		delay = h.st.Breaker.Failure(now, class, f.cfg.Breaker)
		dirty = true
		if h.st.Breaker.Open(now) {
			msg := "circuit opened: no sessions until it closes"
			if class == proto.ErrorClassUnauthorized {
				msg = "comm key refused by the device: not retrying; fix comm_key_env/comm_key_file (a changed key is tried at once after a restart)"
			}
			log.Error(msg, "until", h.st.Breaker.OpenUntil, "failures", h.st.Breaker.Failures, "error_class", class, "err", err)
		} else {
			log.Warn("session failed; retrying with backoff", "delay", delay.Round(time.Millisecond), "failures", h.st.Breaker.Failures, "error_class", class, "err", err)
		}
	}
	if dirty {
		if serr := h.save(ctx, f.kv, holder); serr != nil {
			log.Warn("device state not saved", "err", serr)
		}
	}
	return delay
}

// jitter returns d ± frac·d, so that devices configured alike spread out.
func jitter(d time.Duration, frac float64) time.Duration {
	return time.Duration(float64(d) * (1 + frac*(2*rand.Float64()-1)))
}

// fleetMetrics are the fleet's own series.
type fleetMetrics struct {
	sessions *prometheus.CounterVec
	duration *prometheus.HistogramVec
	held     *prometheus.GaugeVec
}

func newFleetMetrics(reg prometheus.Registerer) *fleetMetrics {
	m := &fleetMetrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "punchflow", Subsystem: "collector", Name: "fleet_sessions_total",
			Help: "Device sessions by mode and result (ok or the heartbeat error class)."}, []string{"mode", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "punchflow", Subsystem: "collector", Name: "fleet_session_seconds",
			Help: "Duration of device sessions (a live session lasts until it ends).", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}, []string{"mode"}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "punchflow", Subsystem: "collector", Name: "fleet_devices_held",
			Help: "Devices this replica holds from the work queue."}, []string{"mode"}),
	}
	if reg != nil {
		reg.MustRegister(m.sessions, m.duration, m.held)
	}
	return m
}

func (m *fleetMetrics) session(mode Mode, class string, d time.Duration) {
	result := class
	if result == "" {
		result = "ok"
	}
	m.sessions.WithLabelValues(string(mode), result).Inc()
	m.duration.WithLabelValues(string(mode)).Observe(d.Seconds())
}
