// Package e2e runs the four services in-process through their Run functions
// against an embedded NATS server and the machine's real PostgreSQL, plus
// SQLite, and checks the whole flow end to end.
package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"
	_ "modernc.org/sqlite"

	"github.com/punchflow/punchflow/platform/cli"
	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/platform/natstest"
	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/proto"
	collector "github.com/punchflow/punchflow/services/collector/app"
	healthwatch "github.com/punchflow/punchflow/services/healthwatch/app"
	loader "github.com/punchflow/punchflow/services/loader/app"
	transformer "github.com/punchflow/punchflow/services/transformer/app"
	"github.com/punchflow/punchflow/tools/internal/punchgen"
)

// svc is one service started through its Run function.
type svc struct {
	name string
	run  cli.RunFunc
	args []string
	*servicetest.Running
}

func writeCSV(t *testing.T, dir, name string, rows [][]string) {
	t.Helper()
	var b bytes.Buffer
	if err := punchgen.Write(&b, rows); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, name, b.String())
}

// writeFile writes atomically (temp name, then rename) as a careful exporter does.
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".part")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func TestPipelineEndToEnd(t *testing.T) {
	ns := natstest.Run(t)
	pgURL := dbtest.PostgresURL(t)
	work := t.TempDir()
	inbox := filepath.Join(work, "inbox")
	sqlitePath := filepath.Join(work, "punchflow.db")
	rulesPath := filepath.Join(work, "rules.yaml")
	if err := os.MkdirAll(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rulesPath, []byte(punchgen.RulesYAML(nil)), 0o644); err != nil {
		t.Fatal(err)
	}

	common := []string{"--nats-url", ns.ClientURL(), "--log-format", "json", "--log-level", "debug", "--shutdown-timeout", "10s"}
	services := []*svc{
		{name: "collector", run: collector.Run, args: []string{"--csv-dir", inbox, "--csv-poll", "100ms", "--csv-settle", "0s", "--csv-chunk-lines", "700"}},
		{name: "transformer", run: transformer.Run, args: []string{"--rules", rulesPath}},
		{name: "loader", run: loader.Run, args: []string{"--sqlite-path", sqlitePath, "--postgres-url", pgURL, "--batch-rows", "500", "--batch-age", "50ms"}},
		{name: "healthwatch", run: healthwatch.Run},
	}
	ctx := t.Context()
	env := func(string) string { return "" }
	for _, s := range services {
		s.Running = servicetest.Start(t, s.name, s.run, append(append([]string(nil), common...), s.args...), env)
	}
	defer func() {
		if t.Failed() {
			for _, s := range services {
				t.Logf("---- %s logs (last 4KB)\n%s", s.name, servicetest.Tail(s.Logs.String(), 4096))
			}
		}
	}()
	for _, s := range services {
		s.WaitReady(t, 30*time.Second)
	}

	// 10,000 punches; the same file again under another name (skipped by its
	// content checkpoint); the same punches shuffled into a new file
	// (published again, dropped by JetStream's de-duplication and the
	// loaders' unique key); and a file with bad lines.
	rows := punchgen.Rows(punchgen.Config{Punches: 10000, Seed: 1, Start: punchgen.PastStart(time.Now(), 10000, 0)})
	if len(rows) != 10000 {
		t.Fatalf("generator made %d rows", len(rows))
	}
	writeCSV(t, inbox, "a-export.csv", rows)
	writeCSV(t, inbox, "b-export-again.csv", rows)
	shuffled := append([][]string(nil), rows...)
	rand.New(rand.NewPCG(2, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	writeCSV(t, inbox, "c-export-shuffled.csv", shuffled)
	bad := strings.Join([]string{
		strings.Join(punchgen.Header, ","),
		strings.Join(rows[0], ","),                   // line 2: good, a duplicate
		"hq,hq-DEV01,,2026-11-02 08:00:00,0,1",       // line 3: no user
		"hq,hq-DEV01,01001,yesterday morning,0,1",    // line 4: bad time
		"hq,hq-DEV01,01001,2026-11-02 08:00:00,in,1", // line 5: state not a number
		"hq,hq-DEV01,01001",                          // line 6: too few fields
		`hq,"hq-DEV01,01001,2026-11-02 08:00:00,0,1`, // line 7: broken quoting
		"", // line 8: blank, ignored
		"hq,hq-DEV01,01001,1999-12-31 23:59:00,0,1",     // line 9: valid CSV, rejected by the rules (clock reset)
		"mars,mars-DEV01,01001,2026-11-02 08:00:00,0,1", // line 10: site not in the rules: default zone, loaded
		"hq,hq-DEV01,01001,2026-11-02 08:00:00,999,1",   // line 11: state out of range
		strings.Join(rows[len(rows)-1], ","),            // line 12: good, a duplicate
	}, "\n") + "\n"
	writeFile(t, inbox, "d-bad-lines.csv", bad)
	const wantRows = 10001 // 10,000 + the mars punch
	wantCollectDLQ := map[int]string{3: "user_id is empty", 4: "device_time", 5: "state", 6: "fields", 7: "not valid CSV", 11: "state"}

	pg, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(context.Background())
	lite, err := sql.Open("sqlite", "file:"+sqlitePath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	count := func() (int, int) {
		var p, s int
		_ = pg.QueryRow(ctx, "select count(*) from attendance_events").Scan(&p)
		_ = lite.QueryRow("select count(*) from attendance_events").Scan(&s)
		return p, s
	}
	servicetest.WaitFor(t, "all rows in PostgreSQL and SQLite", 120*time.Second, func() (bool, string) {
		p, s := count()
		return p >= wantRows && s >= wantRows, fmt.Sprintf("postgres=%d sqlite=%d", p, s)
	})

	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Quiescence: every file moved aside, every consumer fully acknowledged.
	servicetest.WaitSteady(t, "the pipeline to go idle", 60*time.Second, 200*time.Millisecond, func() (bool, string) {
		left, _ := filepath.Glob(filepath.Join(inbox, "*.csv"))
		var state []string
		idle := len(left) == 0
		for _, c := range [][2]string{{"RAW", "transformer"}, {"CLEAN", "loader-postgres"}, {"CLEAN", "loader-sqlite"}} {
			info, err := js.Consumer(ctx, c[0], c[1])
			if err != nil {
				return false, err.Error()
			}
			ci, err := info.Info(ctx)
			if err != nil {
				return false, err.Error()
			}
			idle = idle && ci.NumPending == 0 && ci.NumAckPending == 0
			state = append(state, fmt.Sprintf("%s pending=%d ack_pending=%d", c[1], ci.NumPending, ci.NumAckPending))
		}
		return idle, fmt.Sprintf("files left %v; %s", left, strings.Join(state, "; "))
	})

	p, s := count()
	if p != wantRows || s != wantRows {
		t.Fatalf("rows: postgres=%d sqlite=%d, want exactly %d in each", p, s, wantRows)
	}
	var distinct int
	if err := pg.QueryRow(ctx, "select count(distinct raw_id) from attendance_events").Scan(&distinct); err != nil || distinct != wantRows {
		t.Fatalf("distinct raw ids in postgres = %d (%v), want %d", distinct, err, wantRows)
	}
	var inserted int
	if err := pg.QueryRow(ctx, "select coalesce(sum(inserted),0) from load_batches where outcome='committed'").Scan(&inserted); err != nil || inserted != wantRows {
		t.Fatalf("batch status table: committed inserted = %d (%v), want %d", inserted, err, wantRows)
	}
	// A punch keeps its instant: hq's devices run on New York time.
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	wantAt, err := time.ParseInLocation(time.DateTime, rows[0][3], ny)
	if err != nil {
		t.Fatal(err)
	}
	var occurred time.Time
	var dir, zone string
	if err := pg.QueryRow(ctx, "select occurred_at, direction, time_zone from attendance_events where user_id=$1 and device_time=$2",
		rows[0][2], strings.Replace(rows[0][3], " ", "T", 1)).Scan(&occurred, &dir, &zone); err != nil {
		t.Fatalf("first punch not found: %v", err)
	}
	if zone != "America/New_York" || dir != proto.DirectionIn || !occurred.Equal(wantAt) {
		t.Fatalf("first punch loaded as %v %s %s, want %v, in, America/New_York", occurred.UTC(), dir, zone, wantAt.UTC())
	}

	// Streams: raw holds each punch once (duplicates dropped by Nats-Msg-Id).
	raw, err := js.Stream(ctx, "RAW")
	if err != nil {
		t.Fatal(err)
	}
	ri, _ := raw.Info(ctx)
	if ri.State.Msgs != wantRows+1 { // + the 1999 punch the rules reject
		t.Errorf("RAW holds %d messages, want %d", ri.State.Msgs, wantRows+1)
	}

	// Every bad line is in the DLQ with its reason, file and line.
	dlq := readDLQ(t, ctx, js)
	collect := map[int]proto.DeadLetter{}
	var transform []proto.DeadLetter
	for _, d := range dlq {
		switch d.Stage {
		case proto.StageCollect:
			if d.SourceFile != "d-bad-lines.csv" || d.ReasonCode != proto.ReasonBadLine {
				t.Errorf("collect dead letter %+v: want file d-bad-lines.csv, reason bad_line", d)
			}
			collect[d.SourceLine] = d
		case proto.StageTransform:
			transform = append(transform, d)
		default:
			t.Errorf("unexpected dead letter %+v", d)
		}
	}
	for line, want := range wantCollectDLQ {
		d, ok := collect[line]
		if !ok {
			t.Errorf("line %d is not in the DLQ", line)
			continue
		}
		if !strings.Contains(d.Reason, want) {
			t.Errorf("line %d reason %q does not mention %q", line, d.Reason, want)
		}
	}
	if len(collect) != len(wantCollectDLQ) {
		t.Errorf("collect DLQ has lines %v, want exactly %v", keys(collect), keys(wantCollectDLQ))
	}
	if len(transform) != 1 || !strings.Contains(transform[0].Reason, "too_old") || transform[0].OriginalSeq == 0 {
		t.Errorf("transform DLQ = %+v, want exactly the 1999 punch with reason too_old and its RAW sequence", transform)
	}

	// healthwatch serves the collector's heartbeats.
	var sources []struct {
		Source           string `json:"source"`
		Kind             string `json:"kind"`
		Status           string `json:"status"`
		RecordsPublished int    `json:"records_published_total"`
		RecordsRejected  int    `json:"records_rejected_total"`
	}
	servicetest.WaitFor(t, "healthwatch to show the csv source", 30*time.Second, func() (bool, string) {
		resp, err := http.Get("http://" + services[3].Addr + "/api/sources")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &sources); err != nil {
			return false, string(b)
		}
		return len(sources) == 1 && sources[0].RecordsRejected == len(wantCollectDLQ), string(b)
	})
	if s := sources[0]; s.Source != "csv" || s.Kind != proto.HeartbeatSource || s.Status != "ok" || s.RecordsPublished < 2*10000 {
		t.Errorf("healthwatch source = %+v, want csv/source/ok with at least 20000 published (two files)", s)
	}

	// Metrics are exported.
	resp, err := http.Get("http://" + services[2].Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(mb, []byte("punchflow_loader_acked_total")) || !bytes.Contains(mb, []byte("punchflow_loader_batch_seconds_bucket")) {
		t.Errorf("loader /metrics lacks the pipeline series")
	}

	// Graceful stop, in pipeline order: every Run returns nil.
	for _, s := range services {
		if err := s.Stop(20 * time.Second); err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
	}
}

func readDLQ(t *testing.T, ctx context.Context, js jetstream.JetStream) []proto.DeadLetter {
	t.Helper()
	c, err := js.OrderedConsumer(ctx, "DLQ", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []proto.DeadLetter
	for {
		batch, err := c.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			d, err := proto.DeadLetterFromHeader(m.Headers())
			if err != nil {
				t.Errorf("dead letter on %s: %v", m.Subject(), err)
				continue
			}
			out = append(out, d)
		}
		if n == 0 {
			return out
		}
	}
}

func keys[V any](m map[int]V) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}
