// Package proof holds the loader's crash tests: the real loader binary,
// killed with SIGKILL at random points while it loads 200,000 attendance
// events (and 20,000 business records) into PostgreSQL, MariaDB and SQLite
// at once, restarted each time, and then checked row by row: every id
// exactly once, load_batches adding up, and daily attendance equal to a
// recomputation from the punch table. The NATS server lives in the test
// process, so it survives the kills.
package proof

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
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

	gomysql "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite" // "sqlite" driver

	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/platform/natstest"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/daily"
	"github.com/punchflow/punchflow/services/loader/internal/sink/sinktest"
	"github.com/punchflow/punchflow/services/loader/internal/synth"
)

const (
	events  = 200_000
	records = 20_000
	kills   = 20
)

var workforce = synth.Config{Users: 2000, DoubleEvery: 97}

// rules are the daily rules the loader runs with (its flags below).
var rules = daily.Rules{Debounce: time.Minute, ShiftStart: daily.Clock{Hour: 8, Minute: 15},
	SiteShiftStart: map[string]daily.Clock{"depot": {Hour: 7}}, LateGrace: 2 * time.Minute}

var sinks = []string{"postgres", "mysql", "sqlite"}

// TestKillNineAndDatabaseRestarts loads 200,000 attendance events and
// 20,000 business records into the three databases at once while the
// loader is killed with SIGKILL at 20 random points (three of them during
// start-up) and restarted each time, and while each database goes away for
// a few seconds at a random point of its own:
//
//   - PostgreSQL refuses connections to the test database and has its
//     backends terminated in a loop (ALTER DATABASE ... ALLOW_CONNECTIONS
//     false, pg_terminate_backend);
//   - MariaDB locks the loader's account and kills its connections in a
//     loop (ALTER USER ... ACCOUNT LOCK, KILL CONNECTION);
//   - SQLite is held under an exclusive lock by another connection past the
//     loader's busy timeout.
//
// From the loader's side that is a database restart (or a network cut),
// without disturbing anyone else using the same servers. A loader
// restarted during an outage waits for its database instead of exiting.
//
// Both proofs run in one load, not two: two loads of 220,000 messages into
// three databases took about seven minutes on the shared two-core machine,
// beyond the module's test budget; each failure mode is logged with the
// progress at which it struck.
func TestKillNineAndDatabaseRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test loads 220,000 messages; run without -short")
	}
	began := time.Now()

	bin, dumpdb := binaries(t)
	loadDataset(t)
	ns := natstest.Run(t)
	h := &harness{t: t, bin: bin, dumpdb: dumpdb, natsURL: ns.ClientURL(), dir: t.TempDir(), rnd: mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 7))}
	h.pgURL = dbtest.PostgresURL(t)
	h.myDSN, h.myUser = mysqlUser(t)
	h.litePath = filepath.Join(h.dir, "loader.db")
	h.connect()
	// Whatever happens, no loader outlives the test.
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.cmd != nil {
			select {
			case <-h.exited:
			default:
				_ = h.cmd.Process.Kill()
				<-h.exited
			}
		}
	})

	var pubErr error
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); pubErr = h.publish() }()

	// One outage per database at a random point, each a few seconds.
	var outageWG sync.WaitGroup
	for _, name := range sinks {
		at := 0.1 + 0.7*h.rnd.Float64()
		took := time.Duration(2000+h.rnd.IntN(2000)) * time.Millisecond
		outageWG.Go(func() { h.outageAt(name, at, took) })
	}

	points := make([]float64, kills)
	for i := range points {
		points[i] = 0.02 + 0.93*h.rnd.Float64()
	}
	slices.Sort(points)
	h.startLoader()
	for i, p := range points {
		if i%7 == 3 {
			// Some kills land during start-up: migrations, binding.
			time.Sleep(time.Duration(50+h.rnd.IntN(400)) * time.Millisecond)
		} else {
			h.waitProgress(p)
			time.Sleep(time.Duration(h.rnd.IntN(300)) * time.Millisecond)
		}
		h.kill()
		t.Logf("kill %2d at progress %.3f (%v)", i+1, h.progress(), time.Since(began).Round(time.Millisecond))
		h.startLoader()
	}
	<-pubDone
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	outageWG.Wait()
	h.waitIdle(4 * time.Minute)
	h.stopLoader()
	loaded := time.Since(began)

	h.verify()
	t.Logf("%d events and %d records into %v with %d SIGKILLs and a restart of each database: loaded in %v, verified in %v",
		events, records, sinks, kills, loaded.Round(time.Millisecond), (time.Since(began) - loaded).Round(time.Millisecond))
}

// dataset is what both tests publish and expect, made once.
var dataset struct {
	sync.Once
	msgs        []message
	wantEvents  []string // sorted ids
	wantRecords []string
	wantDays    []daily.Day
	err         error
}

// loadDataset generates the messages, interleaving records among events as
// the transformer would, each with its id as Nats-Msg-Id, and what the
// databases must hold afterwards.
func loadDataset(t *testing.T) {
	t.Helper()
	dataset.Do(func() {
		g := synth.New(workforce)
		add := func(subject, id string, m proto.Message) {
			b, err := proto.Encode(m)
			if err != nil {
				dataset.err = err
				return
			}
			dataset.msgs = append(dataset.msgs, message{subject: subject, id: id, data: b})
		}
		punches := map[daily.Key][]daily.Punch{}
		for k := range events {
			e := g.Event(k)
			add(proto.CleanAttendanceSubject(e.Site), e.ID, &e)
			dataset.wantEvents = append(dataset.wantEvents, e.ID)
			key := daily.Key{Site: e.Site, UserID: e.UserID, WorkDate: e.WorkDate}
			// The CLEAN sequence only breaks ties between versions of one
			// raw punch, and every raw punch has one version here.
			punches[key] = append(punches[key], daily.PunchOf(e, 0))
			if k%(events/records) == 0 {
				r := g.Record("orders", k/(events/records))
				add(proto.CleanRecordSubject(r.Source), r.ID, &r)
				dataset.wantRecords = append(dataset.wantRecords, r.ID)
			}
		}
		slices.Sort(dataset.wantEvents)
		slices.Sort(dataset.wantRecords)
		dataset.wantDays, dataset.err = daily.New(rules).Days(punches)
	})
	if dataset.err != nil {
		t.Fatal(dataset.err)
	}
}

type message struct {
	subject, id string
	data        []byte
}

// harness drives one crash test.
type harness struct {
	t        *testing.T
	bin      string
	dumpdb   string
	natsURL  string
	dir      string
	rnd      *mrand.Rand
	pgURL    string
	myDSN    string
	myUser   string
	litePath string
	js       jetstream.JetStream

	mu      sync.Mutex // guards the loader process
	cmd     *exec.Cmd
	exited  chan struct{}
	httpAdr string
	starts  int
}

// binaries builds the loader and dumpdb without the race detector (they
// are processes of their own) into a directory of the test's, and returns
// their paths.
func binaries(t *testing.T) (loader, dumpdb string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"github.com/punchflow/punchflow/services/loader", "github.com/punchflow/punchflow/services/loader/proof/dumpdb")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the loader: %v\n%s", err, out)
	}
	return filepath.Join(dir, "loader"), filepath.Join(dir, "dumpdb")
}

// mysqlUser creates a database and a user of its own for the loader, so
// that an outage can lock that account without touching anyone else's.
func mysqlUser(t *testing.T) (dsn, user string) {
	t.Helper()
	dsn = dbtest.MySQLDSN(t)
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin := openDB(t, "mysql", dsn)
	var b [4]byte
	_, _ = rand.Read(b[:])
	user = "pf_loader_" + hex.EncodeToString(b[:])
	for _, q := range []string{
		"CREATE USER '" + user + "'@'%' IDENTIFIED BY 'loader-pw'",
		"GRANT ALL ON " + cfg.DBName + ".* TO '" + user + "'@'%'",
	} {
		if _, err := admin.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		d, err := sql.Open("mysql", dsn)
		if err == nil {
			_, _ = d.Exec("DROP USER IF EXISTS '" + user + "'@'%'")
			_ = d.Close()
		}
	})
	cfg.User, cfg.Passwd = user, "loader-pw"
	return cfg.FormatDSN(), user
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

func (h *harness) connect() {
	nc, err := nats.Connect(h.natsURL)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		h.t.Fatal(err)
	}
	h.js = js
	// The loader provisions the streams too; the test publishes before
	// the first loader is up.
	var c topology.Config
	fs := flagSet()
	c.RegisterFlags(fs)
	if err := topology.Ensure(h.t.Context(), js, c); err != nil {
		h.t.Fatal(err)
	}
}

// publish puts the dataset on CLEAN.
func (h *harness) publish() error {
	for _, m := range dataset.msgs {
		for {
			// A message of its own: nats.go sets the reply subject on it.
			msg := &nats.Msg{Subject: m.subject, Data: m.data, Header: nats.Header{proto.HeaderMsgID: {m.id}}}
			_, err := h.js.PublishMsgAsync(msg)
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				return fmt.Errorf("publish %s: %w", m.id, err)
			}
		}
	}
	select {
	case <-h.js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("publishing did not complete")
	}
	return nil
}

func (h *harness) startLoader() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.starts++
	h.httpAdr = freeAddr(h.t)
	logPath := filepath.Join(h.dir, fmt.Sprintf("loader-%02d.log", h.starts))
	logFile, err := os.Create(logPath)
	if err != nil {
		h.t.Fatal(err)
	}
	cmd := exec.Command(h.bin,
		"--nats-url", h.natsURL, "--http-addr", h.httpAdr, "--log-format", "json",
		"--postgres-url", h.pgURL, "--mysql-dsn", h.myDSN, "--sqlite-path", h.litePath,
		"--batch-age", "100ms", "--ack-wait", "3s", "--shutdown-timeout", "10s",
		"--daily-debounce", "1m", "--daily-shift-start", "08:15,depot=07:00", "--daily-late-grace", "2m")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	h.cmd, h.exited = cmd, exited
}

// kill sends SIGKILL and waits for the process to be gone.
func (h *harness) kill() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.exited:
		h.t.Fatalf("loader #%d exited by itself: %s", h.starts, h.lastLog())
	default:
	}
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		h.t.Fatal(err)
	}
	<-h.exited
}

// stopLoader stops the last loader gracefully and checks it exited 0.
func (h *harness) stopLoader() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		h.t.Fatal(err)
	}
	select {
	case <-h.exited:
	case <-time.After(30 * time.Second):
		h.t.Fatalf("loader did not stop within 30s of SIGTERM")
	}
	if code := h.cmd.ProcessState.ExitCode(); code != 0 {
		h.t.Errorf("loader exited %d after SIGTERM: %s", code, h.lastLog())
	}
}

func (h *harness) lastLog() string {
	b, _ := os.ReadFile(filepath.Join(h.dir, fmt.Sprintf("loader-%02d.log", h.starts)))
	s := string(b)
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

// progress is the mean, over the sinks, of the share of all messages below
// the consumer's ack floor.
func (h *harness) progress() float64 {
	var sum float64
	for _, s := range sinks {
		c, err := h.js.Consumer(h.t.Context(), "CLEAN", "loader-"+s)
		if err != nil {
			continue // not bound yet
		}
		info, err := c.Info(h.t.Context())
		if err != nil {
			continue
		}
		sum += float64(info.AckFloor.Stream) / float64(events+records)
	}
	return sum / float64(len(sinks))
}

func (h *harness) waitProgress(p float64) {
	deadline := time.Now().Add(3 * time.Minute)
	for h.progress() < p {
		if time.Now().After(deadline) {
			h.t.Fatalf("progress stuck at %.3f below %.3f: %s", h.progress(), p, h.lastLog())
		}
		h.mu.Lock()
		select {
		case <-h.exited:
			h.mu.Unlock()
			h.t.Fatalf("loader #%d exited by itself: %s", h.starts, h.lastLog())
		default:
		}
		h.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

// waitIdle waits until every consumer has acknowledged every message.
func (h *harness) waitIdle(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		var state []string
		idle := true
		for _, s := range sinks {
			c, err := h.js.Consumer(h.t.Context(), "CLEAN", "loader-"+s)
			if err != nil {
				idle = false
				state = append(state, err.Error())
				continue
			}
			info, err := c.Info(h.t.Context())
			if err != nil {
				idle = false
				continue
			}
			idle = idle && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream == events+records
			state = append(state, fmt.Sprintf("%s pending=%d ack_pending=%d floor=%d", s, info.NumPending, info.NumAckPending, info.AckFloor.Stream))
		}
		if idle {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("not idle after %v: %s\n%s", timeout, strings.Join(state, "; "), h.lastLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// outageAt takes database name away for took once progress reaches at.
func (h *harness) outageAt(name string, at float64, took time.Duration) {
	for h.progress() < at {
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Logf("outage of %s for %v at progress %.3f", name, took, h.progress())
	switch name {
	case "postgres":
		h.postgresOutage(took)
	case "mysql":
		h.mysqlOutage(took)
	case "sqlite":
		// Past the loader's 5s busy timeout, so that writes fail.
		h.sqliteOutage(took + 5*time.Second)
	}
}

func (h *harness) postgresOutage(d time.Duration) {
	i := strings.LastIndex(h.pgURL, "/")
	name := h.pgURL[i+1:]
	rest := ""
	if q := strings.IndexByte(name, '?'); q >= 0 {
		name, rest = name[:q], name[q:]
	}
	admin, err := sql.Open("pgx", h.pgURL[:i+1]+"postgres"+rest)
	if err != nil {
		h.t.Error(err)
		return
	}
	defer admin.Close()
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, `ALTER DATABASE `+name+` ALLOW_CONNECTIONS false`); err != nil {
		h.t.Error(err)
		return
	}
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		_, _ = admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name)
	}
	if _, err := admin.ExecContext(ctx, `ALTER DATABASE `+name+` ALLOW_CONNECTIONS true`); err != nil {
		h.t.Error(err)
	}
}

func (h *harness) mysqlOutage(d time.Duration) {
	admin, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
	if env := os.Getenv(dbtest.EnvMySQL); env != "" {
		admin, err = sql.Open("mysql", env)
	}
	if err != nil {
		h.t.Error(err)
		return
	}
	defer admin.Close()
	ctx := context.Background()
	account := "'" + h.myUser + "'@'%'"
	if _, err := admin.ExecContext(ctx, "ALTER USER "+account+" ACCOUNT LOCK"); err != nil {
		h.t.Error(err)
		return
	}
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		rs, err := admin.QueryContext(ctx, "SELECT id FROM information_schema.processlist WHERE user = ?", h.myUser)
		if err != nil {
			continue
		}
		var ids []int64
		for rs.Next() {
			var id int64
			if rs.Scan(&id) == nil {
				ids = append(ids, id)
			}
		}
		rs.Close()
		for _, id := range ids {
			_, _ = admin.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id))
		}
	}
	if _, err := admin.ExecContext(ctx, "ALTER USER "+account+" ACCOUNT UNLOCK"); err != nil {
		h.t.Error(err)
	}
}

func (h *harness) sqliteOutage(d time.Duration) {
	db, err := sql.Open("sqlite", "file:"+h.litePath+"?_pragma=busy_timeout(30000)")
	if err != nil {
		h.t.Error(err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		h.t.Error(err)
		return
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		h.t.Error(err)
		return
	}
	time.Sleep(d)
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		h.t.Error(err)
	}
}

// verify checks every database row by row, reading it through dumpdb.
func (h *harness) verify() {
	t := h.t
	myCfg, err := gomysql.ParseDSN(h.myDSN)
	if err != nil {
		t.Fatal(err)
	}
	myCfg.ParseTime, myCfg.Loc = true, time.UTC
	myCfg.Params = map[string]string{"time_zone": "'+00:00'"}
	dbs := []struct {
		name, driver, dsn string
		dialect           sinktest.Dialect
	}{
		{"postgres", "pgx", h.pgURL, sinktest.Postgres},
		{"mysql", "mysql", myCfg.FormatDSN(), sinktest.MySQL},
		{"sqlite", "sqlite", "file:" + h.litePath + "?mode=ro", sinktest.SQLite},
	}
	for _, d := range dbs {
		t.Run(d.name, func(t *testing.T) {
			dump := func(query string) [][]string { return h.dump(t, d.driver, d.dsn, query) }
			if diff := diffIDs(dataset.wantEvents, column(dump("SELECT id FROM attendance_events"))); diff != "" {
				t.Errorf("attendance_events ids: %s", diff)
			}
			if got := dump("SELECT count(DISTINCT raw_id) FROM attendance_events")[0][0]; got != fmt.Sprint(events) {
				t.Errorf("distinct raw ids = %s, want %d", got, events)
			}
			if diff := diffIDs(dataset.wantRecords, column(dump("SELECT id FROM business_records"))); diff != "" {
				t.Errorf("business_records ids: %s", diff)
			}
			sums := dump(`SELECT count(*), coalesce(sum(inserted), 0), coalesce(sum(duplicates), 0), coalesce(sum(duration_ms), 0),
				(SELECT count(*) FROM load_batches WHERE outcome = 'failed') FROM load_batches WHERE outcome = 'committed'`)[0]
			if sums[1] != fmt.Sprint(events+records) {
				t.Errorf("load_batches: committed batches inserted %s rows, want %d", sums[1], events+records)
			}
			busy, _ := strconv.ParseInt(sums[3], 10, 64)
			t.Logf("%s: %s rows, %s duplicates skipped (redeliveries after kills), %s batches committed in %v of transactions, %s failed attempts",
				d.name, sums[1], sums[2], sums[0], time.Duration(busy)*time.Millisecond, sums[4])

			// Daily attendance: the table against a recomputation from the
			// punch table, and against the days of the generated events.
			punches := map[daily.Key][]daily.Punch{}
			for _, r := range dump(`SELECT site, user_id, ` + d.dialect.Date("work_date") + `, ` + sinktest.PunchColumns + ` FROM attendance_events`) {
				k := daily.Key{Site: r[0], UserID: r[1], WorkDate: r[2]}
				p := daily.Punch{RawID: r[3], CleanSeq: int64(atoi(t, r[4])), PersonID: r[5],
					OccurredAt: instant(t, r[6]), TimeZone: r[7], Direction: r[8], Shift: r[9],
					LateMinutes: atoi(t, r[10]), EarlyLeaveMinutes: atoi(t, r[11]), OvertimeMinutes: atoi(t, r[12])}
				punches[k] = append(punches[k], p)
			}
			recomputed, err := daily.New(rules).Days(punches)
			if err != nil {
				t.Fatal(err)
			}
			var table []daily.Day
			for _, r := range dump(`SELECT site, user_id, ` + d.dialect.Date("work_date") + `, ` + sinktest.DayColumns + ` FROM daily_attendance`) {
				table = append(table, daily.Day{Key: daily.Key{Site: r[0], UserID: r[1], WorkDate: r[2]}, PersonID: r[3], TimeZone: r[4],
					FirstIn: instant(t, r[5]), LastOut: instant(t, r[6]), WorkedMinutes: atoi(t, r[7]), LateMinutes: atoi(t, r[8]),
					EarlyLeaveMinutes: atoi(t, r[9]), OvertimeMinutes: atoi(t, r[10]), Shift: r[11],
					PunchCount: atoi(t, r[12]), DoublePunches: atoi(t, r[13])})
			}
			slices.SortFunc(table, func(a, b daily.Day) int { return a.Key.Compare(b.Key) })
			if diff := sinktest.DiffDays(recomputed, table); diff != "" {
				t.Errorf("daily_attendance differs from a recomputation from attendance_events (-recomputed +table):\n%s", diff)
			}
			if diff := sinktest.DiffDays(dataset.wantDays, table); diff != "" {
				t.Errorf("daily_attendance differs from the days of the generated events (-want +got):\n%s", diff)
			}
			t.Logf("%s: %d days, equal to a recomputation from the punch table", d.name, len(table))
		})
	}
	// Nothing was dead-lettered.
	s, err := h.js.Stream(t.Context(), "DLQ")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("%d dead letters, want none", info.State.Msgs)
	}
}

// dump runs query on a database through the dumpdb helper.
func (h *harness) dump(t *testing.T, driver, dsn, query string) [][]string {
	t.Helper()
	cmd := exec.Command(h.dumpdb, driver, dsn, query)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dumpdb %s %q: %v: %s", driver, query, err, stderr.String())
	}
	var rows [][]string
	for line := range strings.Lines(string(out)) {
		rows = append(rows, strings.Split(strings.TrimSuffix(line, "\n"), "\t"))
	}
	return rows
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func column(rows [][]string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r[0]
	}
	slices.Sort(out)
	return out
}

// instant parses an instant as dumpdb (or SQLite itself) renders it; \N is
// the zero time.
func instant(t *testing.T, s string) time.Time {
	t.Helper()
	if s == `\N` {
		return time.Time{}
	}
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("instant %q: %v", s, err)
	}
	return at.UTC()
}

// diffIDs describes how got differs from want (both sorted), or "".
func diffIDs(want, got []string) string {
	var missing, extra, dup []string
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j > 0 && j < len(got) && got[j] == got[j-1]:
			dup = append(dup, got[j])
			j++
		case j >= len(got) || i < len(want) && want[i] < got[j]:
			missing = append(missing, want[i])
			i++
		case i >= len(want) || got[j] < want[i]:
			extra = append(extra, got[j])
			j++
		default:
			i++
			j++
		}
	}
	if len(missing)+len(extra)+len(dup) == 0 {
		return ""
	}
	first := func(s []string) []string { return s[:min(len(s), 3)] }
	return fmt.Sprintf("%d rows, want %d: %d missing %v, %d unexpected %v, %d duplicated %v",
		len(got), len(want), len(missing), first(missing), len(extra), first(extra), len(dup), first(dup))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func flagSet() *flag.FlagSet { return flag.NewFlagSet("proof", flag.ContinueOnError) }
