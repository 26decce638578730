package fleet

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/dispose"
	"github.com/punchflow/punchflow/platform/metrics"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/jstest"
	"github.com/punchflow/punchflow/services/collector/internal/zksim"
)

// env is an embedded JetStream server with punchflow's topology, and what a
// fleet needs to run against it.
type env struct {
	t       *testing.T
	j       *jstest.Env
	nc      *nats.Conn
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	topo    topology.Config
	metrics *metrics.Pipeline
	log     *slog.Logger
	dlq     *dispose.Disposer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	j := jstest.Start(t, true)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &env{t: t, j: j, nc: j.NC, js: j.JS, kv: j.KV, topo: j.Topo, metrics: j.Metrics, log: log, dlq: j.DLQ}
}

// fleet returns a fleet of devs with fast test settings (cfg's non-zero
// fields win).
func (e *env) fleet(cfg Config, devs ...Device) *Fleet {
	e.t.Helper()
	cfg.Devices = devs
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	if cfg.DialBackoff == 0 {
		cfg.DialBackoff = 20 * time.Millisecond
	}
	if cfg.Lease == 0 {
		cfg.Lease = 2 * time.Second
	}
	if cfg.Handoff == 0 {
		cfg.Handoff = 100 * time.Millisecond
	}
	if cfg.Breaker == (BreakerPolicy{}) {
		cfg.Breaker = BreakerPolicy{BackoffBase: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Failures: 3,
			Cooldown: time.Second, MaxCooldown: 2 * time.Second, Unauthorized: time.Hour}
	}
	if cfg.Stream == "" {
		cfg.Stream = e.topo.FleetStream
	}
	if cfg.Replica == "" {
		cfg.Replica = "test"
	}
	f, err := New(cfg, Deps{JS: e.js, NC: e.nc, KV: e.kv, DLQ: e.dlq, Metrics: e.metrics, Log: e.log})
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// sim starts a simulated device and returns it with its fleet entry.
func sim(t *testing.T, cfg zksim.Config) (*zksim.Device, Device) {
	t.Helper()
	d, err := zksim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, deviceFor(t, d)
}

// deviceFor is the fleet entry of a simulated device (site "hq", polled
// every 200 ms).
func deviceFor(t *testing.T, d *zksim.Device) Device {
	t.Helper()
	host, port, err := splitHostPort(d.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return Device{Serial: d.Config().SerialNumber, Host: host, Port: port, Site: "hq", TimeZone: "UTC", Location: time.UTC,
		PollInterval: 200 * time.Millisecond, Mode: ModePoll}
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return host, port, err
}

// messages returns every message of stream whose subject matches filter, in
// stream order.
func (e *env) messages(stream, filter string) []jetstream.Msg {
	e.t.Helper()
	return e.j.Msgs(e.t, stream, filter)
}

// punches decodes the raw punches of one device.
func (e *env) punches(serial string) []proto.RawPunch {
	e.t.Helper()
	var out []proto.RawPunch
	for _, m := range e.messages(e.topo.RawStream, "raw.punch.*."+proto.Token(serial)) {
		p, err := proto.Decode[proto.RawPunch](m.Data())
		if err != nil {
			e.t.Fatalf("raw punch does not decode: %v\n%s", err, m.Data())
		}
		out = append(out, p)
	}
	return out
}

// heartbeats decodes the heartbeats of one device.
func (e *env) heartbeats(serial string) []proto.Heartbeat {
	e.t.Helper()
	var out []proto.Heartbeat
	for _, m := range e.messages(e.topo.HealthStream, proto.HealthDeviceSubject(serial)) {
		hb, err := proto.Decode[proto.Heartbeat](m.Data())
		if err != nil {
			e.t.Fatalf("heartbeat does not decode: %v\n%s", err, m.Data())
		}
		out = append(out, hb)
	}
	return out
}

// state reads a device's state from KV.
func (e *env) state(serial string) State {
	e.t.Helper()
	h, err := loadState(testContext(e.t, 5*time.Second), e.kv, &Device{Serial: serial})
	if err != nil {
		e.t.Fatal(err)
	}
	return h.st
}

// ids returns the punch ids of ps, sorted.
func ids(ps []proto.RawPunch) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	slices.Sort(out)
	return out
}

// wantIDs returns the punch ids of a simulated device's log, sorted and
// without duplicates.
func wantIDs(serial string, d *zksim.Device) []string {
	var out []string
	for _, r := range d.Attendance() {
		out = append(out, punchID(serial, &r))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 20 ms for up to timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
