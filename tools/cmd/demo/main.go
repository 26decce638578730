// Command demo runs the whole punchflow pipeline on one machine: an embedded
// NATS server with JetStream, the four services as separate processes, and
// three kinds of input: a simulated fleet of ZK devices (the zksim command:
// stored logs read by the collector, then live punches), a simulated HTTP API
// of orders, tickets and payments (the apisim command), and a CSV file of
// generated punches. Everything loads into SQLite (and PostgreSQL when its URL
// is given). It prints progress and stops everything cleanly on Ctrl-C.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite"

	"github.com/punchflow/punchflow/platform/natstest"
	"github.com/punchflow/punchflow/tools/internal/punchgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type options struct {
	bin         string
	data        string
	punches     int
	devices     int
	deviceLog   int
	punchRate   string
	apiRecords  int
	postgresURL string
	exitDone    bool
	basePort    int
}

// The demo's programs: the four services and the two simulators.
var (
	services   = []string{"collector", "transformer", "loader", "healthwatch"}
	simulators = []string{"zksim", "apisim"}
)

// demoRecordTypes is the records section of the demo's rules: the
// simulated API's orders get typed fields (and a table records_orders in
// the loader); tickets and payments keep their payload only.
const demoRecordTypes = `records:
  orders:
    natural_key: [order_id]
    timestamp: updated_at
    fields:
      order_id:   {path: id, type: string, required: true}
      customer:   {path: customer, type: string}
      status:     {path: status, type: string}
      total:      {path: total, type: number}
      currency:   {path: currency, type: string}
      items:      {path: items, type: int}
      updated_at: {path: updated_at, type: time, required: true}
`

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.bin, "bin", "bin", "folder with the built service binaries (make build)")
	fs.StringVar(&o.data, "data", "demo-data", "working folder: NATS store, inbox, database, logs")
	fs.IntVar(&o.punches, "punches", 20000, "punches to generate into the CSV file")
	fs.IntVar(&o.devices, "devices", 8, "simulated ZK devices (0: none)")
	fs.IntVar(&o.deviceLog, "device-records", 1500, "punches stored in each simulated device's log, over the past weeks")
	fs.StringVar(&o.punchRate, "punch-rate", "6/m", "live punches per simulated device (e.g. 1/s, 30/m; 0: none)")
	fs.IntVar(&o.apiRecords, "api-records", 2000, "records per dataset (orders, tickets, payments) of the simulated API, timestamped over yesterday and today (0: no API)")
	fs.StringVar(&o.postgresURL, "postgres-url", os.Getenv("PUNCHFLOW_POSTGRES_URL"), "also load into this PostgreSQL database")
	fs.BoolVar(&o.exitDone, "exit-when-done", false, "stop once everything is loaded instead of waiting for Ctrl-C")
	fs.IntVar(&o.basePort, "base-port", 18081, "first of four ports for the services' /healthz, /readyz, /metrics")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	for _, s := range append(services, simulators...) {
		if _, err := os.Stat(filepath.Join(o.bin, s)); err != nil {
			return fmt.Errorf("%s/%s not found: run make build first", o.bin, s)
		}
	}
	if err := os.RemoveAll(o.data); err != nil {
		return err
	}
	inbox, logs := filepath.Join(o.data, "inbox"), filepath.Join(o.data, "logs")
	for _, d := range []string{inbox, logs, filepath.Join(o.data, "nats")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	say := func(format string, a ...any) { fmt.Fprintf(out, "demo │ "+format+"\n", a...) }

	ns, err := natstest.Start(filepath.Join(o.data, "nats"))
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	say("embedded NATS with JetStream on %s", ns.ClientURL())

	// The services stop first, in pipeline order, then the simulators.
	var cmds, sims []*proc
	defer func() { stopAll(append(cmds, sims...), say) }()
	start := func(name string, args []string) (*proc, string, error) {
		logFile, err := os.Create(filepath.Join(logs, name+".log"))
		if err != nil {
			return nil, "", err
		}
		defer logFile.Close() // the process holds its own descriptor
		p := &proc{Cmd: exec.Command(filepath.Join(o.bin, name), args...), exited: make(chan struct{})}
		p.Stdout, p.Stderr = logFile, logFile
		p.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches the demo only; it stops the services in order
		if err := p.Start(); err != nil {
			return nil, "", fmt.Errorf("start %s: %w", name, err)
		}
		go func() {
			p.err = p.Wait()
			close(p.exited)
		}()
		return p, logFile.Name(), nil
	}

	// simulate starts a simulator and waits for the file it writes for the
	// collector (it does once it listens).
	simulate := func(name string, args []string, file string) (*proc, error) {
		p, log, err := start(name, args)
		if err != nil {
			return nil, err
		}
		sims = append(sims, p)
		return p, waitForFile(ctx, file, p, log)
	}

	collectorArgs := []string{"--csv-dir", inbox, "--csv-poll", "500ms"}
	now := time.Now().UTC()
	if o.devices > 0 {
		fleet := filepath.Join(o.data, "fleet.yaml")
		first := now.AddDate(0, 0, -30).Format(time.DateOnly)
		cmd, err := simulate("zksim", []string{"--listen", "127.0.0.1:0", "--devices", fmt.Sprint(o.devices), "--users", "50",
			"--records", fmt.Sprint(o.deviceLog), "--start", first, "--site", "sim", "--time-zone", "UTC",
			"--mode", "live", "--punch-rate", o.punchRate, "--fleet-file", fleet}, fleet)
		if err != nil {
			return err
		}
		say("started zksim       pid %-6d %d ZK devices (TCP/UDP), %d stored punches each since %s, live punches %s; device list %s",
			cmd.Process.Pid, o.devices, o.deviceLog, first, o.punchRate, fleet)
		collectorArgs = append(collectorArgs, "--fleet", fleet)
	}
	if o.apiRecords > 0 {
		sources := filepath.Join(o.data, "sources.yaml")
		// Over yesterday and today: the collector's first pull reads the
		// last 24 hours (about half of them), later pulls the rest as
		// their time passes.
		cmd, err := simulate("apisim", []string{"--listen", "127.0.0.1:0", "--records", fmt.Sprint(o.apiRecords),
			"--from", now.AddDate(0, 0, -1).Format(time.DateOnly), "--to", now.Format(time.DateOnly), "--sources-file", sources}, sources)
		if err != nil {
			return err
		}
		say("started apisim      pid %-6d HTTP API of orders, tickets and payments, %d each over yesterday and today; sources %s",
			cmd.Process.Pid, o.apiRecords, sources)
		collectorArgs = append(collectorArgs, "--sources-file", sources)
	}

	rules := filepath.Join(o.data, "rules.yaml")
	if err := os.WriteFile(rules, []byte(punchgen.RulesYAML(nil)+demoRecordTypes), 0o644); err != nil {
		return err
	}
	sqlitePath := filepath.Join(o.data, "punchflow.db")
	common := []string{"--nats-url", ns.ClientURL(), "--log-format", "json", "--shutdown-timeout", "10s"}
	loaderArgs := []string{"--sqlite-path", sqlitePath, "--record-types", rules}
	if o.postgresURL != "" {
		loaderArgs = append(loaderArgs, "--postgres-url", o.postgresURL)
	}
	serviceArgs := map[string][]string{
		"collector":   collectorArgs,
		"transformer": {"--rules", rules},
		"loader":      loaderArgs,
	}
	for i, name := range services {
		addr := fmt.Sprintf("127.0.0.1:%d", o.basePort+i)
		cmd, log, err := start(name, append(append([]string{"--http-addr", addr}, common...), serviceArgs[name]...))
		if err != nil {
			return err
		}
		cmds = append(cmds, cmd)
		say("started %-11s pid %-6d http://%s  logs %s", name, cmd.Process.Pid, addr, log)
	}

	var b bytes.Buffer
	if err := punchgen.Write(&b, punchgen.Rows(punchgen.Config{Punches: o.punches, Seed: uint64(time.Now().UnixNano()), Start: punchgen.PastStart(time.Now(), o.punches, 0)})); err != nil {
		return err
	}
	tmp := filepath.Join(inbox, ".punches.part")
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(inbox, "punches.csv")); err != nil {
		return err
	}
	say("dropped %d generated punches into %s", o.punches, inbox)

	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	begun := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	done := false
	for {
		select {
		case <-ctx.Done():
			say("Ctrl-C: stopping the services")
			return nil
		case <-tick.C:
		}
		p := progress(ctx, js)
		lite, ok := sqliteTally(ctx, sqlitePath)
		rows := "-"
		if ok {
			rows = fmt.Sprintf("sqlite=%d+%d", lite.punches, lite.records)
		}
		if o.postgresURL != "" {
			if pg, ok := postgresTally(ctx, o.postgresURL); ok {
				rows += fmt.Sprintf(" postgres=%d+%d", pg.punches, pg.records)
			}
		}
		say("%5.1fs  collected %-6d transformed %-6d loaded %-30s dead-lettered %d", time.Since(begun).Seconds(), p.raw, p.clean, rows, p.dlq)
		// Caught up: every stored and CSV punch is in SQLite, the API's
		// first records too, and nothing waits in the streams.
		stored := o.punches + o.devices*o.deviceLog
		if !done && p.idle && lite.punches >= stored && (o.apiRecords == 0 || lite.records > 0) {
			done = true
			say("caught up in %.1fs: %d punches and %d business records loaded, %d messages dead-lettered (reasons in the DLQ stream); live punches and API records keep coming",
				time.Since(begun).Seconds(), lite.punches, lite.records, p.dlq)
			say("try: sqlite3 %s 'select site, count(*) from attendance_events group by 1' 'select source, count(*) from business_records group by 1' 'select status, count(*), sum(total) from records_orders group by 1'",
				sqlitePath)
			say("health: curl http://127.0.0.1:%d/api/sources   metrics: curl http://127.0.0.1:%d/metrics", o.basePort+3, o.basePort+2)
			if o.exitDone {
				return nil
			}
			say("press Ctrl-C to stop")
		}
	}
}

type state struct {
	raw, clean, dlq uint64
	idle            bool
}

func progress(ctx context.Context, js jetstream.JetStream) state {
	var s state
	msgs := func(name string) uint64 {
		st, err := js.Stream(ctx, name)
		if err != nil {
			return 0
		}
		return st.CachedInfo().State.Msgs
	}
	s.raw, s.clean, s.dlq = msgs("RAW"), msgs("CLEAN"), msgs("DLQ")
	s.idle = true
	for _, c := range [][2]string{{"RAW", "transformer"}, {"CLEAN", "loader-sqlite"}} {
		cons, err := js.Consumer(ctx, c[0], c[1])
		if err != nil {
			s.idle = false
			continue
		}
		ci := cons.CachedInfo()
		s.idle = s.idle && ci.NumPending == 0 && ci.NumAckPending == 0
	}
	return s
}

// tally is what a database holds: punches, and business records (the typed
// orders and the rest).
type tally struct{ punches, records int }

const tallySQL = `select (select count(*) from attendance_events),
	(select count(*) from business_records) + (select count(*) from records_orders)`

// sqliteTally counts the SQLite database's rows; false until the loader
// has created its tables.
func sqliteTally(ctx context.Context, path string) (tally, bool) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return tally{}, false
	}
	defer db.Close()
	var t tally
	return t, db.QueryRowContext(ctx, tallySQL).Scan(&t.punches, &t.records) == nil
}

// postgresTally counts the PostgreSQL database's rows, earlier runs'
// included.
func postgresTally(ctx context.Context, url string) (tally, bool) {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return tally{}, false
	}
	defer c.Close(ctx)
	var t tally
	return t, c.QueryRow(ctx, tallySQL).Scan(&t.punches, &t.records) == nil
}

// waitForFile waits until a simulator has written the file at path (it
// does once it listens), or fails with the end of its log if it exits.
func waitForFile(ctx context.Context, path string, p *proc, log string) error {
	deadline := time.After(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-p.exited:
			out, _ := os.ReadFile(log)
			return fmt.Errorf("%s exited before writing %s: %s", filepath.Base(p.Path), path, out)
		case <-deadline:
			return fmt.Errorf("%s did not write %s within 30s (log %s)", filepath.Base(p.Path), path, log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// proc is a started program; exited closes once it has exited, with err
// what Wait returned.
type proc struct {
	*exec.Cmd
	exited chan struct{}
	err    error
}

// stopAll sends SIGTERM to the programs in order (the services in pipeline
// order, so each drains before the next, then the simulators), waiting for
// each.
func stopAll(procs []*proc, say func(string, ...any)) {
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			if p.err != nil {
				say("%s exited: %v", filepath.Base(p.Path), p.err)
			} else {
				say("%s stopped cleanly", filepath.Base(p.Path))
			}
		case <-time.After(15 * time.Second):
			_ = p.Process.Kill()
			<-p.exited
			say("%s killed after 15s", filepath.Base(p.Path))
		}
	}
}
