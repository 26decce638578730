package mysql_test

import (
	"context"
	"database/sql"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
	"github.com/punchflow/punchflow/services/loader/internal/sink/mysql"
	"github.com/punchflow/punchflow/services/loader/internal/sink/sinktest"
	"github.com/punchflow/punchflow/services/loader/internal/synth"
)

var methods = []mysql.Method{mysql.LoadData, mysql.Insert}

// readHandle opens a plain handle on the database at dsn, as the tests read
// it: UTC instants.
func readHandle(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn+sep(dsn)+"parseTime=true&loc=UTC&time_zone=%27%2B00%3A00%27")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func sep(dsn string) string {
	for i := range dsn {
		if dsn[i] == '?' {
			return "&"
		}
	}
	return "?"
}

func TestConformance(t *testing.T) {
	for _, m := range methods {
		t.Run(string(m), func(t *testing.T) {
			sinktest.Run(t, sinktest.Harness{
				Dialect: sinktest.MySQL,
				Open: func(t *testing.T, o sinktest.Options) (sink.Sink, *sql.DB, func(sinktest.Options) (sink.Sink, error)) {
					dsn := dbtest.MySQLDSN(t)
					open := func(o sinktest.Options) (sink.Sink, error) {
						s, err := mysql.Open(t.Context(), dsn, slog.New(slog.DiscardHandler), mysql.WithDailyRules(o.Rules), mysql.WithMethod(m),
							mysql.WithRecordTables(o.Tables))
						if err == nil {
							t.Cleanup(func() { _ = s.Close() })
						}
						return s, err
					}
					s, err := open(o)
					if err != nil {
						t.Fatalf("Open: %v", err)
					}
					return s, readHandle(t, dsn), open
				},
			})
		})
	}
}

// eventRow is one attendance_events row as read back.
type eventRow struct {
	ID, RulesVersion, Site, DeviceSerial, UserID string
	PersonID                                     *string
	OccurredAt                                   time.Time
	DeviceTime, TimeZone, Direction              string
	State, VerifyMode                            int
	WorkDate, Flags                              string
	RawID, RawSubject, RawStream                 string
	RawSequence, CleanSequence                   int64
	RunID, CorrelationID, BatchID                string
}

func TestEventsRoundTrip(t *testing.T) {
	for _, m := range methods {
		t.Run(string(m), func(t *testing.T) {
			dsn := dbtest.MySQLDSN(t)
			s, err := mysql.Open(t.Context(), dsn, nil, mysql.WithMethod(m))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Method() != m {
				t.Errorf("Method() = %s, want %s", s.Method(), m)
			}
			g := synth.New(synth.Config{Users: 7})
			evs := sinktest.Events(g, 0, 30)
			// Values that need escaping in LOAD DATA's text format.
			evs[3].DeviceSerial = "tab\there\\and\nnewline"
			evs[4].Flags = []string{"unknown_user", "dst_gap"}
			evs[5].OccurredAt = evs[5].OccurredAt.Add(123456789 * time.Nanosecond)
			b := sinktest.NewBatch("rt", evs, nil)
			res, err := s.Write(t.Context(), b)
			if err != nil {
				t.Fatal(err)
			}
			if res.Inserted != 30 || res.Days != 9 { // 7 users × 4 punches a day: 7 days, then 2 of the next
				t.Errorf("Write = %+v, want 30 inserted, 9 days", res)
			}
			var want []eventRow
			for _, e := range evs {
				r := eventRow{ID: e.ID, RulesVersion: e.RulesVersion, Site: e.Site, DeviceSerial: e.DeviceSerial, UserID: e.UserID,
					OccurredAt: e.OccurredAt.UTC().Truncate(time.Microsecond), DeviceTime: e.DeviceTime, TimeZone: e.TimeZone,
					Direction: e.Direction, State: e.State, VerifyMode: e.VerifyMode, WorkDate: e.WorkDate, Flags: strings.Join(e.Flags, ","),
					RawID: e.Lineage.RawID, RawSubject: e.Lineage.RawSubject, RawStream: e.Lineage.RawStream,
					RawSequence: int64(e.Lineage.RawSequence), CleanSequence: int64(e.Seq),
					RunID: e.Lineage.RunID, CorrelationID: e.Lineage.CorrelationID, BatchID: "rt"}
				if e.PersonID != "" {
					p := e.PersonID
					r.PersonID = &p
				}
				want = append(want, r)
			}
			slices.SortFunc(want, func(a, b eventRow) int { return strings.Compare(a.ID, b.ID) })
			db := readHandle(t, dsn)
			rs, err := db.QueryContext(t.Context(), `SELECT id, rules_version, site, device_serial, user_id, person_id,
				occurred_at, device_time, time_zone, direction, state, verify_mode, DATE_FORMAT(work_date, '%Y-%m-%d'), flags,
				raw_id, raw_subject, raw_stream, raw_sequence, clean_sequence, run_id, correlation_id, batch_id
				FROM attendance_events ORDER BY id`)
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			var got []eventRow
			for rs.Next() {
				var x eventRow
				if err := rs.Scan(&x.ID, &x.RulesVersion, &x.Site, &x.DeviceSerial, &x.UserID, &x.PersonID,
					&x.OccurredAt, &x.DeviceTime, &x.TimeZone, &x.Direction, &x.State, &x.VerifyMode, &x.WorkDate, &x.Flags,
					&x.RawID, &x.RawSubject, &x.RawStream, &x.RawSequence, &x.CleanSequence, &x.RunID, &x.CorrelationID, &x.BatchID); err != nil {
					t.Fatal(err)
				}
				got = append(got, x)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("attendance_events (-want +got):\n%s", diff)
			}
			var started time.Time
			if err := db.QueryRowContext(t.Context(), `SELECT started_at FROM load_batches WHERE batch_id = 'rt'`).Scan(&started); err != nil {
				t.Fatal(err)
			}
			if d := started.Sub(b.Started); d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("load_batches.started_at = %v, want %v (UTC)", started, b.Started.UTC())
			}
		})
	}
}

func TestWriteTransient(t *testing.T) {
	dsn := dbtest.MySQLDSN(t)
	s, err := mysql.Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g := synth.New(synth.Config{})
	evs := sinktest.Events(g, 0, 10)
	// Another transaction holds a lock the batch needs (the daily row of
	// the first event's day) past the write's deadline.
	db := readHandle(t, dsn)
	other, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	if _, err := other.ExecContext(t.Context(), `INSERT INTO daily_attendance (work_date, site, user_id, time_zone,
		worked_minutes, late_minutes, punch_count, double_punches, batch_id) VALUES (?, ?, ?, 'UTC', 0, 0, 0, 0, 'other')`,
		evs[0].WorkDate, evs[0].Site, evs[0].UserID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err = s.Write(ctx, sinktest.NewBatch("blocked", evs, nil))
	if err == nil {
		t.Fatal("Write returned nil while a lock it needs is held")
	}
	if class, _ := fault.Classify(err); class != fault.Transient {
		t.Errorf("Classify(%v) = %v, want transient", err, class)
	}
	if err := other.Rollback(); err != nil {
		t.Fatal(err)
	}
	res, err := s.Write(t.Context(), sinktest.NewBatch("retry", evs, nil))
	if err != nil || res.Inserted != 10 {
		t.Errorf("retry: %+v, %v; want 10 inserted", res, err)
	}
}

func TestOpen(t *testing.T) {
	if _, err := mysql.Open(t.Context(), "root@tcp(127.0.0.1:3306)/", nil); err == nil || !strings.Contains(err.Error(), "names no database") {
		t.Errorf("Open without a database: %v", err)
	}
	if _, err := mysql.Open(t.Context(), "root@tcp(127.0.0.1:3306)/x", nil, mysql.WithMethod("pigeon")); err == nil {
		t.Error("Open with an unknown method returned nil")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := mysql.Open(ctx, "root@tcp(127.0.0.1:1)/none?timeout=2s", nil); err == nil {
		t.Error("Open of an unreachable server returned nil")
	}
	dsn := dbtest.MySQLDSN(t)
	s, err := mysql.Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	// A second Open (a restart or a replica) finds the schema current.
	s2, err := mysql.Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	_ = s2.Close()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping after Close returned nil")
	}
}

// TestRecordRefusedWhileStreaming loads a batch of records one of which,
// in the middle, has an instant DATETIME cannot hold: records are encoded
// while the statement sends them, so the refusal ends the statement part
// way. The batch fails with a permanent error naming the record, and none
// of its rows stays; the batch without that record then loads whole.
func TestRecordRefusedWhileStreaming(t *testing.T) {
	for _, m := range methods {
		t.Run(string(m), func(t *testing.T) {
			dsn := dbtest.MySQLDSN(t)
			s, err := mysql.Open(t.Context(), dsn, nil, mysql.WithMethod(m), mysql.WithRecordTables(synth.RecordTables()))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// Enough records for several chunks of the stream.
			recs := sinktest.Records(synth.New(synth.Config{}), "orders", 0, 600)
			bad := recs[400].ID
			past := time.Date(999, 12, 31, 0, 0, 0, 0, time.UTC)
			recs[400].OccurredAt = &past
			_, err = s.Write(t.Context(), sinktest.NewBatch("with-bad", nil, recs))
			if err == nil {
				t.Fatal("a record with occurred_at in year 999 loaded")
			}
			if class, _ := fault.Classify(err); class != fault.Permanent || !strings.Contains(err.Error(), bad) {
				t.Fatalf("error %v (%v), want a permanent error naming record %s", err, class, bad)
			}
			db := readHandle(t, dsn)
			count := func() int {
				var n int
				if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM records_orders").Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if n := count(); n != 0 {
				t.Errorf("%d rows of the refused batch stayed", n)
			}
			good := slices.Delete(slices.Clone(recs), 400, 401)
			res, err := s.Write(t.Context(), sinktest.NewBatch("without-bad", nil, good))
			if err != nil || res.Inserted != len(good) {
				t.Fatalf("Write without the bad record = %+v, %v; want %d inserted", res, err, len(good))
			}
			if n := count(); n != len(good) {
				t.Errorf("%d rows, want %d", n, len(good))
			}
		})
	}
}
