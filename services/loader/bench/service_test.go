// Package bench measures the whole loader service as a process: messages in
// CLEAN to rows committed, against a raw JetStream consume and a raw pgx
// CopyFrom of the same rows on the same machine in the same run; freshness
// at a steady rate; and the process's peak resident memory.
package bench

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/platform/natstest"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/daily"
	"github.com/punchflow/punchflow/services/loader/internal/migrate"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
	"github.com/punchflow/punchflow/services/loader/internal/sink/postgres"
	"github.com/punchflow/punchflow/services/loader/internal/synth"
)

var buildOnce struct {
	sync.Once
	path string
	err  error
	out  []byte
}

// loaderBinary builds the loader once per test binary.
func loaderBinary(b *testing.B) string {
	b.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "punchflow-loader-bench-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "loader")
		cmd := exec.Command("go", "build", "-o", buildOnce.path, "github.com/punchflow/punchflow/services/loader")
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
		buildOnce.out, buildOnce.err = cmd.CombinedOutput()
	})
	if buildOnce.err != nil {
		b.Fatalf("go build the loader: %v\n%s", buildOnce.err, buildOnce.out)
	}
	return buildOnce.path
}

// world is an embedded NATS server with the topology, and a PostgreSQL
// database.
type world struct {
	natsURL string
	js      jetstream.JetStream
	pgURL   string
}

func newWorld(b *testing.B) *world {
	b.Helper()
	ns := natstest.Run(b)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	var c topology.Config
	c.RegisterFlags(newFlagSet())
	if err := topology.Ensure(b.Context(), js, c); err != nil {
		b.Fatal(err)
	}
	// The database is migrated beforehand: a one-time cost at the first
	// start, not part of loading.
	return &world{natsURL: ns.ClientURL(), js: js, pgURL: migratedDB(b)}
}

// message is one CLEAN message.
type message struct {
	subject, id string
	data        []byte
}

// kind is what a benchmark loads.
type kind string

const (
	attendance kind = "attendance"
	records    kind = "records"
)

func messages(b *testing.B, k kind, from, n int) []message {
	b.Helper()
	g := synth.New(synth.Config{Users: 2000, DoubleEvery: 50})
	out := make([]message, n)
	for i := range out {
		var (
			m   proto.Message
			msg message
		)
		switch k {
		case attendance:
			e := g.Event(from + i)
			m, msg = &e, message{subject: proto.CleanAttendanceSubject(e.Site), id: e.ID}
		case records:
			r := g.Record("orders", from+i)
			m, msg = &r, message{subject: proto.CleanRecordSubject(r.Source), id: r.ID}
		}
		data, err := proto.Encode(m)
		if err != nil {
			b.Fatal(err)
		}
		msg.data = data
		out[i] = msg
	}
	return out
}

// The loader loads the records into the typed table of their source
// (synth.RecordTypes); the baseline copies the loader's columns, rows
// built by eventRow and recordRow in that order.
var (
	recordTables = synth.RecordTables()
	recordGroup  = sink.RecordGroup{Table: recordTables["orders"]}
	eventColumns = sink.EventColumns
)

func eventRow(e proto.AttendanceEvent, seq uint64) []any { return synth.EventRow(e, seq, "raw-copy") }

func recordRow(r proto.CleanRecord, seq uint64) []any {
	return synth.TypedRecordRow(r, seq, "raw-copy")
}

// publish puts msgs on CLEAN and waits for every ack.
func (w *world) publish(b *testing.B, msgs []message) {
	b.Helper()
	for _, m := range msgs {
		w.publishOne(b, m)
	}
	select {
	case <-w.js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		b.Fatal("publishing did not complete")
	}
}

func (w *world) publishOne(b *testing.B, m message) jetstream.PubAckFuture {
	for {
		f, err := w.js.PublishMsgAsync(&nats.Msg{Subject: m.subject, Data: m.data, Header: nats.Header{proto.HeaderMsgID: {m.id}}})
		if err == nil {
			return f
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			b.Fatal(err)
		}
	}
}

// process is a loader process.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

func startLoader(b *testing.B, w *world, extra ...string) *process {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &process{exited: make(chan struct{}), log: filepath.Join(b.TempDir(), "loader.log")}
	f, err := os.Create(p.log)
	if err != nil {
		b.Fatal(err)
	}
	types := filepath.Join(b.TempDir(), "rules.yaml")
	if err := os.WriteFile(types, []byte(synth.RecordTypes), 0o644); err != nil {
		b.Fatal(err)
	}
	args := append([]string{"--nats-url", w.natsURL, "--http-addr", addr, "--log-format", "json", "--log-level", "warn",
		"--postgres-url", w.pgURL, "--sqlite-path", "", "--record-types", types}, extra...)
	p.cmd = exec.Command(loaderBinary(b), args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	b.Cleanup(func() { p.stop(b) })
	return p
}

// peakRSS is the process's high-water resident set (VmHWM), in bytes.
func (p *process) peakRSS(b *testing.B) float64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb * 1024
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}

func (p *process) stop(b *testing.B) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		b.Errorf("loader did not stop within 30s")
	}
}

// cpu is the user and system CPU time the process used, start-up
// included; zero while it runs.
func (p *process) cpu() time.Duration {
	select {
	case <-p.exited:
		return p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
	default:
		return 0
	}
}

// waitAcked waits until the durable has acknowledged every message up to
// stream sequence last.
func (w *world) waitAcked(b *testing.B, p *process, durable string, last uint64, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.exited:
			log, _ := os.ReadFile(p.log)
			b.Fatalf("loader exited: %s", log)
		default:
		}
		if c, err := w.js.Consumer(b.Context(), "CLEAN", durable); err == nil {
			if info, err := c.Info(b.Context()); err == nil && info.AckFloor.Stream >= last {
				return
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(p.log)
			b.Fatalf("not all acknowledged after %v: %s", timeout, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawConsume is the first baseline: a plain durable consumer that acks
// every message, on the same stream.
func (w *world) rawConsume(b *testing.B, n int) time.Duration {
	b.Helper()
	ctx := b.Context()
	c, err := w.js.CreateConsumer(ctx, "CLEAN", jetstream.ConsumerConfig{Durable: "raw-consume", AckPolicy: jetstream.AckExplicitPolicy,
		MaxAckPending: 4000})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	var got int
	start := time.Now()
	cc, err := c.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if got++; got == n {
			close(done)
		}
	}, jetstream.PullMaxMessages(1000))
	if err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatal("raw consume did not finish")
	}
	took := time.Since(start)
	cc.Stop()
	return took
}

// rows returns the rows the messages of messages(b, k, from, n) become,
// for the raw copy. They are made only for it: held while the loader runs,
// their pointers would make the garbage collector of this process, which
// also runs the NATS server, work harder and slow the service down.
func rows(k kind, from, n int) [][]any {
	g := synth.New(synth.Config{Users: 2000, DoubleEvery: 50})
	out := make([][]any, n)
	for i := range out {
		switch k {
		case attendance:
			out[i] = eventRow(g.Event(from+i), uint64(i+1))
		case records:
			out[i] = recordRow(g.Record("orders", from+i), uint64(i+1))
		}
	}
	return out
}

// dayRows returns the daily_attendance rows the attendance events of
// messages(b, attendance, from, n) make under the loader's default daily
// rules, as the loader leaves them (its columns in dayColumns order), for
// the raw copy of every row the service commits.
func dayRows(b *testing.B, from, n int) [][]any {
	b.Helper()
	g := synth.New(synth.Config{Users: 2000, DoubleEvery: 50})
	punches := map[daily.Key][]daily.Punch{}
	for i := range n {
		e := g.Event(from + i)
		k := daily.Key{Site: e.Site, UserID: e.UserID, WorkDate: e.WorkDate}
		punches[k] = append(punches[k], daily.PunchOf(e, int64(i+1)))
	}
	calc := daily.New(daily.DefaultRules())
	opt := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t
	}
	var out [][]any
	for k, ps := range daily.Counted(punches) {
		st, err := calc.Summarize(k, ps)
		if err != nil {
			b.Fatal(err)
		}
		wd, _ := time.Parse(time.DateOnly, k.WorkDate)
		var person any
		if st.PersonID != "" {
			person = st.PersonID
		}
		out = append(out, []any{k.Site, k.UserID, wd, person, st.TimeZone, opt(st.FirstIn), opt(st.LastOut),
			st.WorkedMinutes, st.LateMinutes, st.EarlyLeaveMinutes, st.OvertimeMinutes, st.Shift,
			st.PunchCount, st.DoublePunches, "raw-copy", st.Worked.Microseconds(),
			opt(st.LastKept), opt(st.Last), opt(st.OpenSince), st.RulesVersion})
	}
	return out
}

// dayColumns are the daily_attendance columns dayRows makes.
var dayColumns = []string{"site", "user_id", "work_date", "person_id", "time_zone", "first_in", "last_out",
	"worked_minutes", "late_minutes", "early_leave_minutes", "overtime_minutes", "shift",
	"punch_count", "double_punches", "batch_id", "worked_us", "last_kept_at", "last_at", "open_since", "rules_version"}

// rawCopy is the second baseline: pgx CopyFrom of rows into the same
// indexed table of a second database with the loader's schema, in batches
// of the loader's default size.
func rawCopy(b *testing.B, pgURL, table string, columns []string, rows [][]any) time.Duration {
	b.Helper()
	ctx := b.Context()
	cfg, err := pgxpool.ParseConfig(pgURL)
	if err != nil {
		b.Fatal(err)
	}
	// The same server state as the loader's connections.
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, postgres.SettleMallocSQL)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < len(rows); i += 1000 {
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromRows(rows[i:min(i+1000, len(rows))])); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// checkpoint makes PostgreSQL write every dirty buffer out before a timed
// phase, so that neither the service nor a baseline pays for the previous
// phase's writes, nor meets a timed checkpoint (every checkpoint_timeout)
// in its few seconds: after a checkpoint, the first change of each page
// logs the whole page, and the service, which rewrites day rows, would pay
// for it more than a copy of new rows. It needs a superuser (or
// pg_checkpoint), as on the test servers; without one it only logs.
func checkpoint(b *testing.B, url string) {
	b.Helper()
	conn, err := pgx.Connect(b.Context(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(b.Context(), "CHECKPOINT"); err != nil {
		b.Logf("CHECKPOINT before a timed phase: %v (the figures vary more)", err)
	}
}

// migratedDB returns a fresh database with the loader's schema.
func migratedDB(b *testing.B) string {
	b.Helper()
	url := dbtest.PostgresURL(b)
	db, err := sql.Open("pgx", url)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := migrate.Up(b.Context(), db, migrate.Postgres, nil); err != nil {
		b.Fatal(err)
	}
	if err := migrate.RecordTables(b.Context(), db, migrate.Postgres, recordTables, nil); err != nil {
		b.Fatal(err)
	}
	return url
}

func newFlagSet() *flag.FlagSet { return flag.NewFlagSet("bench", flag.ContinueOnError) }

// BenchmarkService is the whole service: N messages already in CLEAN to
// rows committed by the loader process (default batch sizes, PostgreSQL
// sink, on a migrated database), against the lower of a raw JetStream
// consume of the same messages and a raw CopyFrom of the same rows, in the
// same run, three rounds of each per iteration, each phase after a
// CHECKPOINT. Goal: ratio ≥ 0.60. For attendance the rows the service
// commits are the events and the daily_attendance rows they make: the raw
// copy writes both (the days as they end up, one row each), and
// ratio-events-copy is the ratio against a raw copy of the events alone,
// the baseline of the sink-path benchmark. The loader is timed, as the transformer's
// benchmark times its service, from the creation of its consumer (when it
// starts consuming) to the last acknowledgement; rows/s-from-exec also
// counts the process's start-up (exec, configuration, connections, the
// migration check), which the baselines do not have.
// It also reports the loader's peak RSS (goal ≤ 200 MB) and the CPU time
// the loader process used per row.
func BenchmarkService(b *testing.B) {
	const (
		n = 100_000
		// rounds of the service and the baselines, one after the other,
		// make each iteration: this machine's speed drifts by a tenth or
		// more from one run to the next, and a single round measures the
		// drift as much as the service.
		rounds = 3
	)
	loaderBinary(b) // built before anything is timed
	for _, k := range []kind{records, attendance} {
		b.Run(string(k), func(b *testing.B) {
			table, columns := recordGroup.Name(), recordGroup.Columns()
			if k == attendance {
				table, columns = "attendance_events", eventColumns
			}
			msgs := messages(b, k, 0, n)
			var (
				service, withStart, consume, copying, copyingEvents, cpu time.Duration
				rss                                                      float64
				runs                                                     int
			)
			for b.Loop() {
				for range rounds {
					runs++
					w := newWorld(b)
					w.publish(b, msgs)
					checkpoint(b, w.pgURL)
					start := time.Now()
					p := startLoader(b, w)
					w.waitAcked(b, p, "loader-postgres", n, 10*time.Minute)
					done := time.Now()
					withStart += done.Sub(start)
					c, err := w.js.Consumer(b.Context(), "CLEAN", "loader-postgres")
					if err != nil {
						b.Fatal(err)
					}
					service += done.Sub(c.CachedInfo().Created)
					rss = max(rss, p.peakRSS(b))
					p.stop(b)
					cpu += p.cpu()
					consume += w.rawConsume(b, n)
					url := migratedDB(b)
					enc := rows(k, 0, n)
					checkpoint(b, url)
					took := rawCopy(b, url, table, columns, enc)
					copying += took
					if k == attendance {
						copyingEvents += took
						days := dayRows(b, 0, n)
						checkpoint(b, url)
						copying += rawCopy(b, url, "daily_attendance", dayColumns, days)
					}
				}
			}
			rate := func(d time.Duration) float64 { return float64(n*runs) / d.Seconds() }
			b.ReportMetric(rate(service), "rows/s")
			b.ReportMetric(rate(withStart), "rows/s-from-exec")
			b.ReportMetric(rate(consume), "consume-rows/s")
			b.ReportMetric(rate(copying), "copy-rows/s")
			b.ReportMetric(rate(service)/min(rate(consume), rate(copying)), "ratio")
			if k == attendance {
				b.ReportMetric(rate(copyingEvents), "events-copy-rows/s")
				b.ReportMetric(rate(service)/min(rate(consume), rate(copyingEvents)), "ratio-events-copy")
			}
			b.ReportMetric(rss/(1<<20), "peak-rss-MB")
			b.ReportMetric(float64(cpu.Microseconds())/float64(n*runs), "loader-cpu-us/row")
		})
	}
}

// BenchmarkFreshness publishes attendance events at a steady 2,000
// messages/s for ten seconds to a running loader (default batch sizes,
// PostgreSQL sink) and measures, for every message, the time from its
// publish to its row being visible in the database (polled every 5 ms).
// Goal: p99 ≤ 1 s. It also reports the loader's peak RSS.
func BenchmarkFreshness(b *testing.B) {
	const (
		rate     = 2000
		duration = 10 * time.Second
		n        = int(rate * duration / time.Second)
	)
	msgs := messages(b, attendance, 0, n)
	loaderBinary(b)
	var lat []time.Duration
	var rss float64
	for b.Loop() {
		w := newWorld(b)
		p := startLoader(b, w)
		// Wait for the consumer, so that start-up is not counted.
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			if _, err := w.js.Consumer(b.Context(), "CLEAN", "loader-postgres"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("loader consumer not bound")
			}
		}
		pool, err := pgxpool.New(b.Context(), w.pgURL)
		if err != nil {
			b.Fatal(err)
		}
		seen := make(map[int64]time.Time, n)
		var mu sync.Mutex
		pollDone := make(chan struct{})
		ctx, cancel := context.WithCancel(b.Context())
		go func() {
			defer close(pollDone)
			var last int64
			for ctx.Err() == nil {
				rows, err := pool.Query(ctx, `SELECT clean_sequence FROM attendance_events WHERE clean_sequence > $1`, last)
				now := time.Now()
				if err == nil {
					for rows.Next() {
						var s int64
						if rows.Scan(&s) == nil {
							mu.Lock()
							if _, ok := seen[s]; !ok {
								seen[s] = now
							}
							mu.Unlock()
						}
					}
					rows.Close()
					mu.Lock()
					// Rows commit in batches in sequence order; the next
					// poll looks past the contiguous prefix seen so far.
					for seen[last+1] != (time.Time{}) {
						last++
					}
					mu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		type sent struct {
			at time.Time
			f  jetstream.PubAckFuture
		}
		out := make([]sent, 0, n)
		tick := time.NewTicker(10 * time.Millisecond)
		per := rate / 100
		for i := 0; i < n; {
			<-tick.C
			for j := 0; j < per && i < n; j, i = j+1, i+1 {
				out = append(out, sent{time.Now(), w.publishOne(b, msgs[i])})
			}
		}
		tick.Stop()
		published := map[int64]time.Time{}
		for _, s := range out {
			select {
			case ack := <-s.f.Ok():
				published[int64(ack.Sequence)] = s.at
			case err := <-s.f.Err():
				b.Fatal(err)
			}
		}
		w.waitAcked(b, p, "loader-postgres", uint64(n), 2*time.Minute)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			k := len(seen)
			mu.Unlock()
			if k >= n || time.Now().After(deadline) {
				break
			}
		}
		cancel()
		<-pollDone
		pool.Close()
		rss = max(rss, p.peakRSS(b))
		p.stop(b)
		for seq, at := range published {
			v, ok := seen[seq]
			if !ok {
				b.Fatalf("row of sequence %d never seen", seq)
			}
			lat = append(lat, v.Sub(at))
		}
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(float64(q(0.50))/float64(time.Millisecond), "p50-ms")
	b.ReportMetric(float64(q(0.99))/float64(time.Millisecond), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max-ms")
	b.ReportMetric(rss/(1<<20), "peak-rss-MB")
}
