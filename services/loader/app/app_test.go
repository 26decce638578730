package app

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"

	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/platform/natstest"
	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/daily"
	"github.com/punchflow/punchflow/services/loader/internal/sink/sinktest"
	"github.com/punchflow/punchflow/services/loader/internal/status"
	"github.com/punchflow/punchflow/services/loader/internal/synth"
)

// loader is one Run of the service in this process.
type loader struct{ *servicetest.Running }

// start runs the loader with args against natsURL and waits until it is
// ready. The test's cleanup stops it and checks it stopped cleanly.
func start(t *testing.T, natsURL string, args ...string) *loader {
	t.Helper()
	l := launch(t, natsURL, args...)
	l.WaitReady(t, 30*time.Second)
	return l
}

// launch runs the loader without waiting for it. When the test fails, its
// cleanup prints the end of the loader's log.
func launch(t *testing.T, natsURL string, args ...string) *loader {
	t.Helper()
	all := append([]string{"--nats-url", natsURL, "--log-format", "json", "--log-level", "debug",
		"--shutdown-timeout", "10s"}, args...)
	l := &loader{servicetest.Start(t, "loader", Run, all, func(string) string { return "" })}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("loader logs (last 6KB):\n%s", servicetest.Tail(l.Logs.String(), 6<<10))
		}
	})
	return l
}

// ready returns /readyz's status code and body (0 and the error when it
// does not answer).
func (l *loader) ready() (int, string) {
	code, body, err := l.Get("/readyz")
	if err != nil {
		return 0, err.Error()
	}
	return code, body
}

// stream is the test's own connection to JetStream.
type stream struct {
	js jetstream.JetStream
}

func connect(t *testing.T, url string) stream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return stream{js: js}
}

// publish publishes msgs (subject, body, id) and waits for every ack.
func (s stream) publish(t *testing.T, msgs ...message) {
	t.Helper()
	var futures []jetstream.PubAckFuture
	for _, m := range msgs {
		nm := &nats.Msg{Subject: m.subject, Data: m.body, Header: nats.Header{}}
		if m.id != "" {
			nm.Header.Set(proto.HeaderMsgID, m.id)
		}
		f, err := s.js.PublishMsgAsync(nm)
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatal(err)
		case <-time.After(10 * time.Second):
			t.Fatal("publish ack timed out")
		}
	}
}

type message struct {
	subject, id string
	body        []byte
}

func eventMsg(t *testing.T, e proto.AttendanceEvent) message {
	t.Helper()
	b, err := proto.Encode(&e)
	if err != nil {
		t.Fatal(err)
	}
	return message{subject: proto.CleanAttendanceSubject(e.Site), id: e.ID, body: b}
}

func recordMsg(t *testing.T, r proto.CleanRecord) message {
	t.Helper()
	b, err := proto.Encode(&r)
	if err != nil {
		t.Fatal(err)
	}
	return message{subject: proto.CleanRecordSubject(r.Source), id: r.ID, body: b}
}

func (s stream) consumer(t *testing.T, durable string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := s.js.Consumer(t.Context(), "CLEAN", durable)
	if err != nil {
		t.Fatalf("consumer %s: %v", durable, err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// idle waits until every durable has acknowledged everything, on every look
// for 100 ms (servicetest.WaitSteady).
func (s stream) idle(t *testing.T, timeout time.Duration, durables ...string) {
	t.Helper()
	servicetest.WaitSteady(t, "consumers idle", timeout, 100*time.Millisecond, func() (bool, string) {
		var state []string
		idle := true
		for _, d := range durables {
			ci := s.consumer(t, d)
			idle = idle && ci.NumPending == 0 && ci.NumAckPending == 0
			state = append(state, fmt.Sprintf("%s pending=%d ack_pending=%d", d, ci.NumPending, ci.NumAckPending))
		}
		return idle, strings.Join(state, "; ")
	})
}

// deadLetters reads every dead letter with its sink header.
func (s stream) deadLetters(t *testing.T) (out []deadLetter) {
	t.Helper()
	c, err := s.js.OrderedConsumer(t.Context(), "DLQ", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
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
			}
			out = append(out, deadLetter{DeadLetter: d, subject: m.Subject()})
		}
		if n == 0 {
			return out
		}
	}
}

type deadLetter struct {
	proto.DeadLetter
	subject string
}

func count(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// withParams appends DSN parameters to a go-sql-driver DSN.
func withParams(dsn, params string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + params
	}
	return dsn + "?" + params
}

func openDB(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestRoutingToThreeSinks loads records into PostgreSQL only, attendance
// into MySQL only, and everything into SQLite, each sink on a consumer of
// its own; bad messages go to the dead-letter stream per sink, and
// `loader status` reports it all.
func TestRoutingToThreeSinks(t *testing.T) {
	ns := natstest.Run(t)
	pgURL, myDSN := dbtest.PostgresURL(t), dbtest.MySQLDSN(t)
	litePath := filepath.Join(t.TempDir(), "loader.db")
	sinkArgs := []string{
		"--postgres-url", pgURL, "--mysql-dsn", myDSN, "--sqlite-path", litePath,
		"--sink-subjects", "postgres=clean.record.>,mysql=clean.attendance.>,sqlite=clean.>",
	}
	args := append(append([]string{}, sinkArgs...), "--batch-rows", "50", "--batch-age", "20ms",
		"--daily-debounce", "1m", "--daily-shift-start", "08:15,depot=07:00", "--daily-late-grace", "2m")
	start(t, ns.ClientURL(), args...)
	s := connect(t, ns.ClientURL())

	g := synth.New(synth.Config{Users: 25, DoubleEvery: 9})
	const events, records = 300, 120
	var msgs []message
	for k := range events {
		msgs = append(msgs, eventMsg(t, g.Event(k)))
		if k < records {
			msgs = append(msgs, recordMsg(t, g.Record("orders", k)))
		}
	}
	// A record whose fields carry a number a float64 cannot hold.
	big := g.Record("orders", records)
	bigBody, err := proto.Encode(&big)
	if err != nil {
		t.Fatal(err)
	}
	bigBody = bytes.Replace(bigBody, []byte(`"amount_cents":`), []byte(`"big":12345678901234567890,"amount_cents":`), 1)
	msgs = append(msgs, message{subject: proto.CleanRecordSubject("orders"), id: big.ID, body: bigBody})
	// An event the databases refuse (state out of their range), an event
	// that is not JSON, and an event in a zone nobody knows.
	refused := g.Event(events)
	refused.State = 300
	badZone := g.Event(events + 1)
	badZone.TimeZone = "Mars/Olympus_Mons"
	msgs = append(msgs, eventMsg(t, refused), eventMsg(t, badZone),
		message{subject: proto.CleanAttendanceSubject("hq"), id: "not-json", body: []byte("{not json")})
	// The same again: a redelivery of everything adds nothing.
	s.publish(t, msgs...)
	s.publish(t, msgs...)

	s.idle(t, 60*time.Second, "loader-postgres", "loader-mysql", "loader-sqlite")

	pg := openDB(t, "pgx", pgURL)
	my := openDB(t, "mysql", withParams(myDSN, "parseTime=true&loc=UTC&time_zone=%27%2B00%3A00%27"))
	lite := openDB(t, "sqlite", "file:"+litePath+"?mode=ro")
	for _, c := range []struct {
		name         string
		db           *sql.DB
		events, recs int
	}{
		{"postgres", pg, 0, records + 1},
		{"mysql", my, events, 0},
		{"sqlite", lite, events, records + 1},
	} {
		if got := count(t, c.db, "attendance_events"); got != c.events {
			t.Errorf("%s: %d attendance events, want %d", c.name, got, c.events)
		}
		if got := count(t, c.db, "business_records"); got != c.recs {
			t.Errorf("%s: %d business records, want %d", c.name, got, c.recs)
		}
	}
	rules := daily.Rules{Debounce: time.Minute, ShiftStart: daily.Clock{Hour: 8, Minute: 15},
		SiteShiftStart: map[string]daily.Clock{"depot": {Hour: 7}}, LateGrace: 2 * time.Minute}
	if n := sinktest.CheckDaily(t, my, sinktest.MySQL, rules); n == 0 {
		t.Error("mysql: no daily attendance")
	}
	if n := sinktest.CheckDaily(t, lite, sinktest.SQLite, rules); n == 0 {
		t.Error("sqlite: no daily attendance")
	}
	if n := count(t, pg, "daily_attendance"); n != 0 {
		t.Errorf("postgres: %d daily rows from no events", n)
	}
	var fields string
	if err := pg.QueryRowContext(t.Context(), `SELECT fields->>'big' FROM business_records WHERE id = $1`, big.ID).Scan(&fields); err != nil || fields != "12345678901234567890" {
		t.Errorf("postgres: fields.big = %q (%v), want every digit of 12345678901234567890", fields, err)
	}

	// Dead letters: every sink that took a bad message refused it once,
	// with the sink named; the redelivered copies were de-duplicated.
	type key struct{ sink, reason, id string }
	got := map[key]int{}
	for _, d := range s.deadLetters(t) {
		if d.Stage != proto.StageLoad {
			t.Errorf("dead letter of stage %s: %+v", d.Stage, d)
		}
		got[key{d.Sink, d.ReasonCode, d.MsgID}]++
	}
	want := map[key]int{}
	for _, sk := range []string{"mysql", "sqlite"} {
		want[key{sk, proto.ReasonRejectedBySink, refused.ID}] = 1
		want[key{sk, proto.ReasonInvalid, badZone.ID}] = 1
		want[key{sk, proto.ReasonDecode, "not-json"}] = 1
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dead letters by sink, reason and id (-want +got):\n%s", diff)
	}

	// loader status, as JSON and as a table.
	var out bytes.Buffer
	statusArgs := append([]string{"status", "--nats-url", ns.ClientURL(), "--json"}, sinkArgs...)
	if err := Run(t.Context(), statusArgs, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatalf("loader status: %v", err)
	}
	var report status.Report
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, out.String())
	}
	type line struct {
		Sink, Consumer string
		Subjects       []string
		Lag            uint64
		Inserted       int64
		Dead           map[string]uint64
	}
	var lines []line
	for _, s := range report.Sinks {
		if s.Consumer.Error != "" || s.Batches.Error != "" {
			t.Errorf("status of %s: consumer error %q, batches error %q", s.Sink, s.Consumer.Error, s.Batches.Error)
		}
		if len(s.Batches.Recent) == 0 || s.Batches.Committed == 0 {
			t.Errorf("status of %s shows no batches: %+v", s.Sink, s.Batches)
		}
		lines = append(lines, line{s.Sink, s.Consumer.Name, s.Consumer.Subjects, s.Consumer.Lag(), s.Batches.Inserted, s.DeadLetters})
	}
	dead := map[string]uint64{proto.ReasonRejectedBySink: 1, proto.ReasonInvalid: 1, proto.ReasonDecode: 1}
	wantLines := []line{
		{"postgres", "loader-postgres", []string{"clean.record.>"}, 0, records + 1, map[string]uint64{}},
		{"mysql", "loader-mysql", []string{"clean.attendance.>"}, 0, events, dead},
		{"sqlite", "loader-sqlite", []string{"clean.>"}, 0, events + records + 1, dead},
	}
	if diff := cmp.Diff(wantLines, lines, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("status per sink (-want +got):\n%s", diff)
	}
	if report.DeadLetters.Total != 6 {
		t.Errorf("status counts %d dead letters, want 6", report.DeadLetters.Total)
	}
	out.Reset()
	if err := Run(t.Context(), append([]string{"status", "--nats-url", ns.ClientURL(), "--batches", "2"}, sinkArgs...),
		func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatalf("loader status: %v", err)
	}
	table := out.String()
	for _, want := range []string{"SINK", "loader-postgres", "loader-mysql", "loader-sqlite", "clean.record.>", "committed",
		"rejected_by_sink=1", "dead letters of the load stage: 6"} {
		if !strings.Contains(table, want) {
			t.Errorf("status table lacks %q:\n%s", want, table)
		}
	}
	t.Logf("loader status:\n%s", table)
}

// TestOutage takes the PostgreSQL database away mid-load: readiness turns
// false, nothing is acknowledged or redelivered while it is away, and the
// backlog drains once it is back, every row exactly once.
func TestOutage(t *testing.T) {
	ns := natstest.Run(t)
	pgURL := dbtest.PostgresURL(t)
	l := start(t, ns.ClientURL(), "--postgres-url", pgURL, "--sqlite-path", "", "--batch-rows", "100", "--batch-age", "20ms",
		"--ack-wait", "3s")
	s := connect(t, ns.ClientURL())
	g := synth.New(synth.Config{Users: 40})
	batchOf := func(from, n int) []message {
		var out []message
		for k := from; k < from+n; k++ {
			out = append(out, eventMsg(t, g.Event(k)))
		}
		return out
	}
	s.publish(t, batchOf(0, 500)...)
	s.idle(t, 30*time.Second, "loader-postgres")

	outage := newPostgresOutage(t, pgURL)
	outage.begin(t)
	s.publish(t, batchOf(500, 700)...)
	servicetest.WaitFor(t, "readiness false", 15*time.Second, func() (bool, string) {
		code, body := l.ready()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "sink postgres"), fmt.Sprint(code, " ", body)
	})
	before := s.consumer(t, "loader-postgres")
	// Longer than AckWait: in-progress acks keep the held messages alive.
	time.Sleep(4 * time.Second)
	during := s.consumer(t, "loader-postgres")
	if during.AckFloor.Stream != before.AckFloor.Stream || during.AckFloor.Stream != 500 {
		t.Errorf("ack floor moved during the outage: %d, then %d; want 500 throughout", before.AckFloor.Stream, during.AckFloor.Stream)
	}
	if during.NumAckPending == 0 {
		t.Errorf("no message held during the outage: %+v", during)
	}
	if during.NumRedelivered != 0 {
		t.Errorf("%d messages redelivered during the outage, want 0 (in-progress acks)", during.NumRedelivered)
	}
	outage.end(t)
	s.idle(t, 60*time.Second, "loader-postgres")
	servicetest.WaitFor(t, "readiness true again", 15*time.Second, func() (bool, string) {
		code, body := l.ready()
		return code == http.StatusOK, body
	})
	pg := openDB(t, "pgx", pgURL)
	if n := count(t, pg, "attendance_events"); n != 1200 {
		t.Errorf("%d rows after the outage, want 1200", n)
	}
	var inserted int
	if err := pg.QueryRowContext(t.Context(), `SELECT sum(inserted) FROM load_batches WHERE outcome = 'committed'`).Scan(&inserted); err != nil || inserted != 1200 {
		t.Errorf("load_batches: %d inserted (%v), want 1200", inserted, err)
	}
	var failed int
	if err := pg.QueryRowContext(t.Context(), `SELECT count(*) FROM load_batches WHERE outcome = 'failed'`).Scan(&failed); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d failed attempts recorded (best effort, during the outage)", failed)
	sinktest.CheckDaily(t, pg, sinktest.Postgres, daily.DefaultRules())
	if dl := s.deadLetters(t); len(dl) != 0 {
		t.Errorf("dead letters after an outage: %+v", dl)
	}
}

// TestStartDuringOutage starts the loader while its PostgreSQL database
// refuses connections: it waits (not ready) instead of exiting, migrates
// once the database is back, and loads.
func TestStartDuringOutage(t *testing.T) {
	ns := natstest.Run(t)
	pgURL := dbtest.PostgresURL(t)
	outage := newPostgresOutage(t, pgURL)
	outage.begin(t)
	l := launch(t, ns.ClientURL(), "--postgres-url", pgURL, "--sqlite-path", "", "--batch-age", "20ms")
	time.Sleep(2 * time.Second)
	l.CheckRunning(t)
	if code, body := l.ready(); code != http.StatusServiceUnavailable || !strings.Contains(body, "sinks: not open yet") {
		t.Errorf("/readyz while its database refuses connections = %d %q, want 503 naming the sinks", code, body)
	}
	if resp, err := http.Get("http://" + l.Addr + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz while waiting for the database: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	if !strings.Contains(l.Logs.String(), "database not available yet, retrying") {
		t.Errorf("no retry logged:\n%s", servicetest.Tail(l.Logs.String(), 2000))
	}
	outage.end(t)
	l.WaitReady(t, 30*time.Second)
	s := connect(t, ns.ClientURL())
	g := synth.New(synth.Config{Users: 10})
	var msgs []message
	for k := range 100 {
		msgs = append(msgs, eventMsg(t, g.Event(k)))
	}
	s.publish(t, msgs...)
	s.idle(t, 30*time.Second, "loader-postgres")
	if n := count(t, openDB(t, "pgx", pgURL), "attendance_events"); n != 100 {
		t.Errorf("%d rows, want 100", n)
	}
}

// postgresOutage makes one database unavailable to every new connection and
// ends the ones open, as a server restart does from the loader's point of
// view, without touching other databases on the server.
type postgresOutage struct {
	admin *sql.DB
	db    string
	stop  chan struct{}
	done  chan struct{}
}

func newPostgresOutage(t *testing.T, url string) *postgresOutage {
	t.Helper()
	i := strings.LastIndex(url, "/")
	name := url[i+1:]
	if q := strings.IndexByte(name, '?'); q >= 0 {
		name = name[:q]
	}
	admin := openDB(t, "pgx", url[:i+1]+"postgres"+url[i+1+len(name):])
	return &postgresOutage{admin: admin, db: name}
}

func (o *postgresOutage) begin(t *testing.T) {
	t.Helper()
	if _, err := o.admin.ExecContext(t.Context(), `ALTER DATABASE `+o.db+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	o.stop, o.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(o.done)
		for {
			_, _ = o.admin.ExecContext(context.Background(),
				`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, o.db)
			select {
			case <-o.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
}

func (o *postgresOutage) end(t *testing.T) {
	t.Helper()
	close(o.stop)
	<-o.done
	if _, err := o.admin.ExecContext(t.Context(), `ALTER DATABASE `+o.db+` ALLOW_CONNECTIONS true`); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "defaults", args: nil},
		{name: "three sinks routed", args: []string{"--postgres-url", "postgres://x/db", "--mysql-dsn", "u@tcp(h)/db",
			"--sink-subjects", "postgres=clean.record.>,mysql=clean.attendance.hq,mysql=clean.attendance.depot"}},
		{name: "no sink", args: []string{"--sqlite-path", ""}, wantErr: "no sink"},
		{name: "route to a sink not configured", args: []string{"--sink-subjects", "postgres=clean.>"}, wantErr: `sink "postgres", which is not configured`},
		{name: "route without subject", args: []string{"--sink-subjects", "sqlite="}, wantErr: "not sink=subject"},
		{name: "subject outside clean", args: []string{"--subjects", "raw.>"}, wantErr: "not a subject of the clean stream"},
		{name: "overlapping subjects", args: []string{"--sink-subjects", "sqlite=clean.>,sqlite=clean.record.>"}, wantErr: "overlap"},
		{name: "overlapping wildcards", args: []string{"--subjects", "clean.*.hq,clean.attendance.*"}, wantErr: "overlap"},
		{name: "bad shift start", args: []string{"--daily-shift-start", "9am"}, wantErr: "daily-shift-start"},
		{name: "negative debounce", args: []string{"--daily-debounce", "-1s"}, wantErr: "debounce"},
		{name: "bad postgres url", args: []string{"--postgres-url", "postgres://h/db?pool_max_conns=many"}, wantErr: "postgres-url"},
		{name: "mysql dsn without database", args: []string{"--mysql-dsn", "u@tcp(h:3306)/"}, wantErr: "names no database"},
		{name: "bad mysql method", args: []string{"--mysql-dsn", "u@tcp(h)/db", "--mysql-method", "carrier-pigeon"}, wantErr: "mysql-method"},
		{name: "short ack wait", args: []string{"--ack-wait", "500ms"}, wantErr: "ack-wait"},
		{name: "record types file missing", args: []string{"--record-types", "/nonexistent/rules.yaml"}, wantErr: "record-types: record types: open /nonexistent/rules.yaml"},
		{name: "record types wrong", args: []string{"--record-types", writeFile(t, "records: {orders: {fields: {cents: {type: money}}}}")},
			wantErr: `records.orders.fields.cents.type: "money"`},
		{name: "record types", args: []string{"--record-types", writeFile(t, synth.RecordTypes)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			fs := flag.NewFlagSet("loader", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.register(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTypedRecordTables loads records of a typed source into its table in
// PostgreSQL and SQLite, and those of an untyped source into
// business_records. A record whose field does not fit its column is
// dead-lettered as it arrives, once per sink, and nothing else is held up.
func TestTypedRecordTables(t *testing.T) {
	ns := natstest.Run(t)
	pgURL := dbtest.PostgresURL(t)
	litePath := filepath.Join(t.TempDir(), "loader.db")
	start(t, ns.ClientURL(), "--postgres-url", pgURL, "--sqlite-path", litePath,
		"--record-types", writeFile(t, synth.RecordTypes), "--batch-rows", "40", "--batch-age", "20ms")
	s := connect(t, ns.ClientURL())
	g := synth.New(synth.Config{})
	const orders, tickets = 150, 30
	var msgs []message
	for k := range orders {
		msgs = append(msgs, recordMsg(t, g.Record("orders", k)))
	}
	for k := range tickets {
		msgs = append(msgs, recordMsg(t, g.Record("tickets", k)))
	}
	bad := g.Record("orders", orders)
	bad.Fields["amount_cents"] = "twelve"
	msgs = append(msgs, recordMsg(t, bad))
	s.publish(t, msgs...)
	s.idle(t, 60*time.Second, "loader-postgres", "loader-sqlite")

	pg := openDB(t, "pgx", pgURL)
	lite := openDB(t, "sqlite", "file:"+litePath+"?mode=ro")
	for name, db := range map[string]*sql.DB{"postgres": pg, "sqlite": lite} {
		if got := count(t, db, "records_orders"); got != orders {
			t.Errorf("%s: %d rows in records_orders, want %d", name, got, orders)
		}
		if got := count(t, db, "business_records"); got != tickets {
			t.Errorf("%s: %d rows in business_records, want %d", name, got, tickets)
		}
		var paid, cents int
		if err := db.QueryRowContext(t.Context(), `SELECT count(*), sum(amount_cents) FROM records_orders WHERE paid`).Scan(&paid, &cents); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantPaid, wantCents := 0, 0
		for k := range orders {
			if r := g.Record("orders", k); r.Fields["paid"].(bool) {
				wantPaid++
				wantCents += int(r.Fields["amount_cents"].(float64))
			}
		}
		if paid != wantPaid || cents != wantCents {
			t.Errorf("%s: %d paid orders for %d cents, want %d for %d", name, paid, cents, wantPaid, wantCents)
		}
	}
	var dead []string
	for _, d := range s.deadLetters(t) {
		dead = append(dead, d.Sink+" "+d.ReasonCode+" "+d.MsgID)
		if !strings.Contains(d.Reason, "field amount_cents") || !strings.Contains(d.Reason, "records_orders.amount_cents is int") {
			t.Errorf("dead letter reason %q does not say which field and column", d.Reason)
		}
	}
	slices.Sort(dead)
	want := []string{"postgres invalid " + bad.ID, "sqlite invalid " + bad.ID}
	if !slices.Equal(dead, want) {
		t.Errorf("dead letters = %q, want %q", dead, want)
	}
}

func TestOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"clean.>", "clean.record.x", true},
		{"clean.record.>", "clean.attendance.>", false},
		{"clean.*.hq", "clean.attendance.*", true},
		{"clean.attendance.hq", "clean.attendance.depot", false},
		{"clean.attendance.hq", "clean.attendance.hq.x", false},
		{"clean.*", "clean.attendance.hq", false},
	}
	for _, tt := range tests {
		if got := overlap(tt.a, tt.b); got != tt.want {
			t.Errorf("overlap(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := overlap(tt.b, tt.a); got != tt.want {
			t.Errorf("overlap(%q, %q) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}
