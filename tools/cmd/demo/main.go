// Command demo runs the whole punchflow pipeline on one machine: an embedded
// NATS server with JetStream, the four services as separate processes, and
// generated CSV punches loaded into SQLite (or PostgreSQL when its URL is
// given). It prints progress and stops everything cleanly on Ctrl-C.
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
	"strings"
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
	postgresURL string
	exitDone    bool
	basePort    int
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.bin, "bin", "bin", "folder with the built service binaries (make build)")
	fs.StringVar(&o.data, "data", "demo-data", "working folder: NATS store, inbox, database, logs")
	fs.IntVar(&o.punches, "punches", 20000, "punches to generate")
	fs.StringVar(&o.postgresURL, "postgres-url", os.Getenv("PUNCHFLOW_POSTGRES_URL"), "also load into this PostgreSQL database")
	fs.BoolVar(&o.exitDone, "exit-when-done", false, "stop once everything is loaded instead of waiting for Ctrl-C")
	fs.IntVar(&o.basePort, "base-port", 18081, "first of four ports for the services' /healthz, /readyz, /metrics")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	for _, s := range []string{"collector", "transformer", "loader", "healthwatch"} {
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

	rules := filepath.Join(o.data, "rules.yaml")
	if err := os.WriteFile(rules, []byte(punchgen.RulesYAML(nil)), 0o644); err != nil {
		return err
	}
	sqlitePath := filepath.Join(o.data, "punchflow.db")
	common := []string{"--nats-url", ns.ClientURL(), "--log-format", "json", "--shutdown-timeout", "10s"}
	loaderArgs := []string{"--sqlite-path", sqlitePath}
	if o.postgresURL != "" {
		loaderArgs = append(loaderArgs, "--postgres-url", o.postgresURL)
	}
	procs := []struct {
		name string
		args []string
	}{
		{"collector", []string{"--csv-dir", inbox, "--csv-poll", "500ms"}},
		{"transformer", []string{"--rules", rules}},
		{"loader", loaderArgs},
		{"healthwatch", nil},
	}
	var cmds []*exec.Cmd
	defer func() { stopAll(cmds, say) }()
	for i, p := range procs {
		addr := fmt.Sprintf("127.0.0.1:%d", o.basePort+i)
		logFile, err := os.Create(filepath.Join(logs, p.name+".log"))
		if err != nil {
			return err
		}
		defer logFile.Close()
		cmd := exec.Command(filepath.Join(o.bin, p.name), append(append([]string{"--http-addr", addr}, common...), p.args...)...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches the demo only; it stops the services in order
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", p.name, err)
		}
		cmds = append(cmds, cmd)
		say("started %-11s pid %-6d http://%s  logs %s", p.name, cmd.Process.Pid, addr, logFile.Name())
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
	start := time.Now()
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
		rows := countRows(ctx, sqlitePath, o.postgresURL)
		say("%5.1fs  collected %-6d transformed %-6d loaded %-14s dead-lettered %d", time.Since(start).Seconds(), p.raw, p.clean, rows, p.dlq)
		if !done && p.raw > 0 && p.idle {
			done = true
			say("done in %.1fs: %d punches transformed and loaded, %d dead-lettered (reasons in the DLQ stream). Try: sqlite3 %s 'select site, count(*) from attendance_events group by 1'",
				time.Since(start).Seconds(), p.clean, p.dlq, sqlitePath)
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

func countRows(ctx context.Context, sqlitePath, pgURL string) string {
	var parts []string
	if db, err := sql.Open("sqlite", "file:"+sqlitePath+"?mode=ro"); err == nil {
		var n int
		if db.QueryRowContext(ctx, "select count(*) from attendance_events").Scan(&n) == nil {
			parts = append(parts, fmt.Sprintf("sqlite=%d", n))
		}
		db.Close()
	}
	if pgURL != "" {
		if c, err := pgx.Connect(ctx, pgURL); err == nil {
			var n int
			if c.QueryRow(ctx, "select count(*) from attendance_events").Scan(&n) == nil {
				parts = append(parts, fmt.Sprintf("postgres=%d", n))
			}
			c.Close(ctx)
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// stopAll sends SIGTERM to the services in pipeline order, so each drains
// before the next, and waits for them.
func stopAll(cmds []*exec.Cmd, say func(string, ...any)) {
	for _, c := range cmds {
		_ = c.Process.Signal(syscall.SIGTERM)
		errc := make(chan error, 1)
		go func() { errc <- c.Wait() }()
		select {
		case err := <-errc:
			if err != nil {
				say("%s exited: %v", filepath.Base(c.Path), err)
			} else {
				say("%s stopped cleanly", filepath.Base(c.Path))
			}
		case <-time.After(15 * time.Second):
			_ = c.Process.Kill()
			say("%s killed after 15s", filepath.Base(c.Path))
		}
	}
}
