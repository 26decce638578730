package fleet

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"

	"github.com/punchflow/punchflow/platform/dispose"
	"github.com/punchflow/punchflow/platform/metrics"
	"github.com/punchflow/punchflow/platform/natstest"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/zk"
	"github.com/punchflow/punchflow/services/collector/internal/zksim"
)

// The benchmarks run the JetStream server and the simulated devices in a
// helper process (this test binary, re-executed), so that the benchmark
// process holds only the collector: its peak RSS is the collector's.

// helperEnv carries the helper's spec; TestMain turns the binary into the
// helper when it is set.
const helperEnv = "PUNCHFLOW_FLEET_BENCH_HELPER"

// helperSpec describes the fleet a helper simulates.
type helperSpec struct {
	Devices   int           `json:"devices"`
	Records   int           `json:"records"`
	Users     int           `json:"users"`
	Seed      int64         `json:"seed"`
	Bandwidth int           `json:"bandwidth"`
	Latency   time.Duration `json:"latency"`
	NoNATS    bool          `json:"no_nats"`
}

// simConfig is device i of the spec; the parent builds the same devices to
// know their logs.
func (s helperSpec) simConfig(i int) zksim.Config {
	return zksim.Config{Seed: s.Seed + int64(i), Users: s.Users, Records: s.Records, RecordCapacity: max(100_000, s.Records),
		SerialNumber: fmt.Sprintf("BENCH%03d", i), Faults: zksim.Faults{Bandwidth: s.Bandwidth, Latency: s.Latency}}
}

// helperReady is what the helper prints once it serves.
type helperReady struct {
	NATS  string   `json:"nats"`
	Addrs []string `json:"addrs"`
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(runHelper(spec))
	}
	os.Exit(m.Run())
}

// runHelper serves the spec's devices (and a JetStream server) until its
// standard input closes.
func runHelper(specJSON string) int {
	var spec helperSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "helper spec:", err)
		return 2
	}
	var ready helperReady
	if !spec.NoNATS {
		dir, err := os.MkdirTemp("", "fleet-bench-nats-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer os.RemoveAll(dir)
		ns, err := natstest.Start(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer ns.Shutdown()
		ready.NATS = ns.ClientURL()
	}
	devs := make([]*zksim.Device, spec.Devices)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range spec.Devices {
		wg.Go(func() {
			d, err := zksim.Start(spec.simConfig(i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			devs[i] = d
		})
	}
	wg.Wait()
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, firstErr)
		return 2
	}
	for _, d := range devs {
		defer d.Close()
		ready.Addrs = append(ready.Addrs, d.Addr())
	}
	b, _ := json.Marshal(ready)
	fmt.Println(string(b))
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// startHelper runs a helper for spec and returns what it serves; it stops
// when the benchmark ends.
func startHelper(b *testing.B, spec helperSpec) helperReady {
	b.Helper()
	js, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("helper: %v", err)
	}
	var ready helperReady
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		b.Fatalf("helper said %q: %v", line, err)
	}
	return ready
}

// benchEnv connects to the helper's server and provisions the topology (in
// files, as in production).
type benchEnv struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	topo topology.Config
	deps Deps
}

func newBenchEnv(b *testing.B, url string) *benchEnv {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	var topo topology.Config
	topo.RegisterFlags(flag.NewFlagSet("topology", flag.PanicOnError))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := topology.Ensure(ctx, js, topo); err != nil {
		b.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, topo.CheckpointBucket)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	m := metrics.NewPipeline(prometheus.NewRegistry(), "collector")
	return &benchEnv{nc: nc, js: js, kv: kv, topo: topo,
		deps: Deps{JS: js, NC: nc, KV: kv, DLQ: dispose.New(js, proto.StageCollect, 0, m, log), Metrics: m, Log: log}}
}

// devicesAt is the fleet entries of the helper's devices.
func devicesAt(b *testing.B, spec helperSpec, addrs []string) []Device {
	b.Helper()
	var out []Device
	for i, a := range addrs {
		host, port, err := splitHostPort(a)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, Device{Serial: spec.simConfig(i).SerialNumber, Host: host, Port: port, Site: "bench", TimeZone: "UTC",
			Location: time.UTC, PollInterval: time.Minute, Mode: ModePoll, Timeout: 5 * time.Second})
	}
	return out
}

// resetStates deletes the devices' checkpoints, so that a sync publishes
// every record again.
func (e *benchEnv) resetStates(b *testing.B, devs []Device) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, d := range devs {
		if err := e.kv.Purge(ctx, StateKey(d.Serial)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFleetSync: 64 devices of 10,000 records, each limited to
// 100 KB/s with 20 ms added to every reply, synced by the fleet at once,
// against the same zk client reading the same devices one after another.
// The sequential read is measured on the first 4 devices and scaled to 64
// (64 × ~4.3 s would take 4.5 minutes): metric seq64_s_from4.
func BenchmarkFleetSync(b *testing.B) {
	spec := helperSpec{Devices: 64, Records: 10_000, Users: 500, Seed: 1000, Bandwidth: 100_000, Latency: 20 * time.Millisecond}
	ready := startHelper(b, spec)
	e := newBenchEnv(b, ready.NATS)
	devs := devicesAt(b, spec, ready.Addrs)
	const sample = 4
	var fleetWall, seqWall time.Duration
	for b.Loop() {
		e.resetStates(b, devs)
		f, err := New(Config{Devices: devs, Concurrency: 64, ReadBudget: 256 << 20, Replica: "bench"}, e.deps)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		sum, err := f.SyncOnce(context.Background())
		fleetWall = time.Since(start)
		if err != nil || sum.Published != spec.Devices*spec.Records {
			b.Fatalf("fleet sync: %+v, %v", sum, err)
		}

		start = time.Now()
		for _, d := range devs[:sample] {
			c, err := zk.Dial(context.Background(), d.Addr(), zk.WithTimeout(5*time.Second))
			if err != nil {
				b.Fatal(err)
			}
			var n int
			err = c.WithDisabled(context.Background(), func(ctx context.Context) error {
				recs, _, err := c.Attendance(ctx)
				n = len(recs)
				return err
			})
			c.Close()
			if err != nil || n != spec.Records {
				b.Fatalf("sequential read of %s: %d records, %v", d.Serial, n, err)
			}
		}
		seqWall = time.Since(start)
	}
	seq64 := seqWall * time.Duration(spec.Devices) / sample
	b.ReportMetric(fleetWall.Seconds(), "fleet_s")
	b.ReportMetric(seq64.Seconds(), "seq64_s_from4")
	b.ReportMetric(seq64.Seconds()/fleetWall.Seconds(), "speedup")
	b.ReportMetric(float64(spec.Devices*spec.Records)/fleetWall.Seconds(), "records/s")
}

// BenchmarkPublishPath: 64 devices of 50,000 records without added latency.
// The fleet's published records per second (read, decode, build, publish,
// wait for every acknowledgement) against a plain asynchronous JetStream
// publish of the same messages, built beforehand, to the same server in the
// same run (ratio), and the collector's peak RSS during its sync.
func BenchmarkPublishPath(b *testing.B) {
	spec := helperSpec{Devices: 64, Records: 50_000, Users: 500, Seed: 2000}
	ready := startHelper(b, spec)
	e := newBenchEnv(b, ready.NATS)
	devs := devicesAt(b, spec, ready.Addrs)
	ctx := context.Background()
	base := topology.Config{}
	base.RegisterFlags(flag.NewFlagSet("base", flag.PanicOnError))
	bcfg := base.Streams()[0] // the raw stream's settings, on other subjects
	bcfg.Name, bcfg.Subjects, bcfg.DenyPurge = "BENCH_BASELINE", []string{"bench.>"}, false
	total := spec.Devices * spec.Records
	var baseRate, fleetRate, peakMB float64
	for b.Loop() {
		_ = e.js.DeleteStream(ctx, bcfg.Name)
		if _, err := e.js.CreateStream(ctx, bcfg); err != nil {
			b.Fatal(err)
		}
		// Baseline: the same messages, built per device beforehand, then
		// published asynchronously and all acknowledgements awaited.
		var baseTime time.Duration
		for i := range spec.Devices {
			msgs := baselineMsgs(b, spec, i, &devs[i])
			start := time.Now()
			for _, m := range msgs {
				for {
					_, err := e.js.PublishMsgAsync(m)
					if err == nil {
						break
					}
					if err != jetstream.ErrTooManyStalledMsgs {
						b.Fatal(err)
					}
				}
			}
			select {
			case <-e.js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("baseline acknowledgements did not arrive")
			}
			baseTime += time.Since(start)
		}
		baseRate = float64(total) / baseTime.Seconds()
		_ = e.js.DeleteStream(ctx, bcfg.Name)

		e.resetStates(b, devs)
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS(b)
		f, err := New(Config{Devices: devs, Replica: "bench"}, e.deps)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		sum, err := f.SyncOnce(ctx)
		wall := time.Since(start)
		if err != nil || sum.Published != total {
			b.Fatalf("fleet sync: %+v, %v", sum, err)
		}
		fleetRate = float64(total) / wall.Seconds()
		peakMB = peakRSSMB(b)
	}
	b.ReportMetric(fleetRate, "records/s")
	b.ReportMetric(baseRate, "baseline_records/s")
	b.ReportMetric(fleetRate/baseRate, "ratio")
	b.ReportMetric(peakMB, "peak_rss_MB")
}

// baselineMsgs builds the raw punch messages of device i exactly as the
// fleet does, on the baseline's subjects.
func baselineMsgs(b *testing.B, spec helperSpec, i int, dev *Device) []*nats.Msg {
	b.Helper()
	sd, err := zksim.NewDevice(spec.simConfig(i))
	if err != nil {
		b.Fatal(err)
	}
	recs := sd.Attendance()
	pk := newPunches(dev, proto.NewCorrelationID(), proto.NewTraceparent(), offsetMS(0))
	pk.subject = "bench.punch." + proto.Token(dev.Serial)
	msgs := make([]*nats.Msg, 0, len(recs))
	for j := range recs {
		m, err := pk.msg(&recs[j])
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// resetPeakRSS resets the process's peak resident set size (VmHWM).
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset peak RSS: %v", err)
	}
}

// peakRSSMB reads VmHWM in MB.
func peakRSSMB(b *testing.B) float64 {
	s, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(s)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// BenchmarkLiveCapture: 16 live devices held by a fleet; punches are made on
// them at random, about 200 a second, and each is timed from the call that
// makes it on the simulated device to its arrival from the raw stream
// (stored and delivered by JetStream). Reports the 50th and 99th percentile
// and the maximum.
func BenchmarkLiveCapture(b *testing.B) {
	const devices, users, punches = 16, 500, 1000
	ns := natstest.Run(b)
	e := newBenchEnv(b, ns.ClientURL())
	var sims []*zksim.Device
	var devs []Device
	for i := range devices {
		d, err := zksim.Start(zksim.Config{Seed: int64(3000 + i), Users: users, Records: 1000, SerialNumber: fmt.Sprintf("LIVE%02d", i)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { d.Close() })
		host, port, _ := splitHostPort(d.Addr())
		sims = append(sims, d)
		devs = append(devs, Device{Serial: d.Config().SerialNumber, Host: host, Port: port, Site: "bench", Location: time.UTC,
			PollInterval: time.Minute, Mode: ModeLive})
	}
	f, err := New(Config{Devices: devs, Replica: "bench", Stream: e.topo.FleetStream}, e.deps)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := f.Seed(ctx); err != nil {
		b.Fatal(err)
	}
	pc, lc := f.ConsumerConfigs()
	poll, err := e.js.CreateOrUpdateConsumer(ctx, e.topo.FleetStream, pc)
	if err != nil {
		b.Fatal(err)
	}
	live, err := e.js.CreateOrUpdateConsumer(ctx, e.topo.FleetStream, lc)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, poll, live) }()
	defer func() { cancel(); <-done }()

	var mu sync.Mutex
	sent := map[string]time.Time{}
	arrived := map[string]time.Duration{}
	// A push consumer: JetStream delivers each message as soon as it is
	// stored (a pull consumer adds its own request cycle to the figure).
	cons, err := e.js.CreateOrUpdatePushConsumer(ctx, e.topo.RawStream, jetstream.ConsumerConfig{
		DeliverSubject: nats.NewInbox(), AckPolicy: jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverNewPolicy,
		FilterSubject: "raw.punch.>", InactiveThreshold: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		now := time.Now()
		id := m.Headers().Get(proto.HeaderMsgID)
		mu.Lock()
		if t0, ok := sent[id]; ok {
			if _, dup := arrived[id]; !dup {
				arrived[id] = now.Sub(t0)
			}
		}
		mu.Unlock()
	})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()
	// Wait until every device's session is live: the reconciled logs are in
	// and every device has a session open.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := e.js.Stream(ctx, e.topo.RawStream)
		if err != nil {
			b.Fatal(err)
		}
		if st.CachedInfo().State.Msgs >= uint64(devices*1000) && sessionsOpen(sims) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("live sessions did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var lat []time.Duration
	for b.Loop() {
		mu.Lock()
		clear(sent)
		clear(arrived)
		mu.Unlock()
		next := make([]int, devices)
		tick := time.NewTicker(5 * time.Millisecond)
		for k := range punches {
			<-tick.C
			di := k % devices
			u := strconv.Itoa(1001 + next[di]%users)
			next[di]++
			mu.Lock()
			t0 := time.Now()
			r, err := sims[di].Punch(u, k%2, 1)
			if err != nil {
				mu.Unlock()
				b.Fatal(err)
			}
			sent[punchID(devs[di].Serial, &r)] = t0
			mu.Unlock()
		}
		tick.Stop()
		wait := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			n := len(arrived)
			mu.Unlock()
			if n == punches {
				break
			}
			if time.Now().After(wait) {
				b.Fatalf("%d of %d punches arrived", n, punches)
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		lat = lat[:0]
		for _, d := range arrived {
			lat = append(lat, d)
		}
		mu.Unlock()
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max_ms")
}

// sessionsOpen reports whether every simulated device has a session open.
func sessionsOpen(sims []*zksim.Device) bool {
	for _, s := range sims {
		if s.Sessions() == 0 {
			return false
		}
	}
	return true
}
