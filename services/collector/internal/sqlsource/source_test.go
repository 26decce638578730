package sqlsource

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/extract"
)

type memSink struct {
	mu      sync.Mutex
	records []proto.RawRecord
	rejects []extract.Reject
}

func (m *memSink) Record(_ context.Context, r proto.RawRecord) error {
	m.mu.Lock()
	m.records = append(m.records, r)
	m.mu.Unlock()
	return nil
}

func (m *memSink) Reject(_ context.Context, r extract.Reject) error {
	m.mu.Lock()
	m.rejects = append(m.rejects, r)
	m.mu.Unlock()
	return nil
}

var base = time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)

// rowTime is the updated_at of row i: every 20 minutes, but rows come in
// threes with the same time, so that page boundaries fall between rows
// with equal cursor values.
func rowTime(i int) time.Time { return base.Add(time.Duration(i/3) * 20 * time.Minute) }

type database struct {
	driver string
	dsn    string
	ddl    string
}

func databases(t *testing.T) []database {
	return []database{
		{Postgres, dbtest.PostgresURL(t), `CREATE TABLE hr.leave_requests (
			id integer NOT NULL, region text NOT NULL, employee varchar(40) NOT NULL, days numeric(5,2),
			approved boolean, note text, doc jsonb, updated_at timestamp NOT NULL, PRIMARY KEY (region, id))`},
		{MySQL, dbtest.MySQLDSN(t), `CREATE TABLE hr.leave_requests (
			id int NOT NULL, region varchar(10) NOT NULL, employee varchar(40) NOT NULL, days decimal(5,2),
			approved boolean, note text, doc json, updated_at datetime(6) NOT NULL, PRIMARY KEY (region, id))`},
	}
}

// seed creates the table and n rows; it returns its qualified name.
func seed(t *testing.T, d database, n int) string {
	t.Helper()
	driver := "pgx"
	if d.driver == MySQL {
		driver = "mysql"
	}
	db, err := sql.Open(driver, d.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	schema := "CREATE SCHEMA hr"
	if d.driver == MySQL {
		// MySQL has no schemas: a second database plays the part.
		schema = "CREATE DATABASE hr_" + fmt.Sprint(time.Now().UnixNano())
		if _, err := db.Exec(schema); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(schema, "CREATE DATABASE ")
		t.Cleanup(func() { db.Exec("DROP DATABASE " + name) })
		d.ddl = strings.Replace(d.ddl, "hr.", name+".", 1)
	} else if _, err := db.Exec(schema); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(d.ddl); err != nil {
		t.Fatal(err)
	}
	table := strings.Fields(d.ddl)[2]
	p := func(i int) string {
		if d.driver == MySQL {
			return "?"
		}
		return fmt.Sprintf("$%d", i)
	}
	ins := fmt.Sprintf("INSERT INTO %s (id, region, employee, days, approved, note, doc, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
		table, p(1), p(2), p(3), p(4), p(5), p(6), p(7), p(8))
	for i := 0; i < n; i++ {
		var note, doc any
		if i%5 == 0 {
			note = fmt.Sprintf("note \"%d\" ü", i)
			doc = fmt.Sprintf(`{"b": %d, "a": [1, 2]}`, i)
		}
		region := []string{"north", "south", "east"}[i%3]
		if _, err := db.Exec(ins, i, region, fmt.Sprintf("E%04d", i%50), fmt.Sprintf("%d.%02d", i%10, i%100), i%2 == 0, note, doc, rowTime(i)); err != nil {
			t.Fatal(err)
		}
	}
	return table
}

func open(t *testing.T, d database, table string, edit func(*Config)) *Source {
	t.Helper()
	cfg := Config{Name: "hr-leave", Driver: d.driver, DSNEnv: "HR_DSN", Table: table, KeyColumns: []string{"region", "id"},
		CursorColumn: "updated_at", PageSize: 7}
	if edit != nil {
		edit(&cfg)
	}
	src, err := Open(context.Background(), cfg, func(k string) string {
		if k == "HR_DSN" {
			return d.dsn
		}
		return ""
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func TestExtractReadsEveryRowOfTheWindowOnce(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.driver, func(t *testing.T) {
			src := open(t, d, seed(t, d, 300), nil)
			// Rows 30..269 (times of rows 30 and 270 are the window's ends).
			w := extract.Window{From: rowTime(30), To: rowTime(270)}
			var sink memSink
			if err := src.Extract(context.Background(), w, &sink); err != nil {
				t.Fatal(err)
			}
			var want, got []string
			for i := 30; i < 270; i++ {
				want = append(want, fmt.Sprintf("%s|%d", []string{"north", "south", "east"}[i%3], i))
			}
			for _, r := range sink.records {
				got = append(got, r.NaturalKey)
				if r.ObservedAt == nil || r.ObservedAt.Before(w.From) || !r.ObservedAt.Before(w.To) {
					t.Fatalf("row %s observed at %v", r.NaturalKey, r.ObservedAt)
				}
			}
			// Rows come in (updated_at, region, id) order.
			wantOrdered := append([]string(nil), want...)
			for i := 0; i+2 < len(wantOrdered); i += 3 {
				g := wantOrdered[i : i+3]
				sortStrings(g)
			}
			if diff := cmp.Diff(wantOrdered, got); diff != "" {
				t.Fatalf("keys (-want +got):\n%s", diff)
			}
			if len(sink.rejects) != 0 {
				t.Fatalf("rejects %v", sink.rejects)
			}
		})
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestPayloadIsTheRowAsJSON(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.driver, func(t *testing.T) {
			src := open(t, d, seed(t, d, 12), nil)
			var sink memSink
			if err := src.Extract(context.Background(), extract.Window{From: rowTime(10), To: rowTime(11).Add(time.Second)}, &sink); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, r := range sink.records {
				got[r.NaturalKey] = string(r.Payload)
			}
			want := map[string]string{
				"east|11":  `{"id":11,"region":"east","employee":"E0011","days":1.11,"approved":false,"note":null,"doc":null,"updated_at":"2025-08-01T01:00:00Z"}`,
				"north|9":  `{"id":9,"region":"north","employee":"E0009","days":9.09,"approved":false,"note":null,"doc":null,"updated_at":"2025-08-01T01:00:00Z"}`,
				"south|10": `{"id":10,"region":"south","employee":"E0010","days":0.10,"approved":true,"note":"note \"10\" ü","doc":{"a":[1,2],"b":10},"updated_at":"2025-08-01T01:00:00Z"}`,
			}
			if d.driver == MySQL {
				// MySQL keeps booleans as TINYINT(1); MariaDB's JSON is
				// LONGTEXT, so the document stays the text it was given.
				want["east|11"] = strings.Replace(want["east|11"], `"approved":false`, `"approved":0`, 1)
				want["north|9"] = strings.Replace(want["north|9"], `"approved":false`, `"approved":0`, 1)
				want["south|10"] = strings.Replace(strings.Replace(want["south|10"], `"approved":true`, `"approved":1`, 1),
					`"doc":{"a":[1,2],"b":10}`, `"doc":"{\"b\": 10, \"a\": [1, 2]}"`, 1)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("payloads (-want +got):\n%s", diff)
			}
			// The same rows read again are the same bytes: the same ids.
			var again memSink
			if err := src.Extract(context.Background(), extract.Window{From: rowTime(10), To: rowTime(11).Add(time.Second)}, &again); err != nil {
				t.Fatal(err)
			}
			for i := range again.records {
				if string(again.records[i].Payload) != string(sink.records[i].Payload) {
					t.Fatalf("row read twice differs:\n%s\n%s", sink.records[i].Payload, again.records[i].Payload)
				}
			}
		})
	}
}

func TestSelectedColumnsAndWhere(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.driver, func(t *testing.T) {
			src := open(t, d, seed(t, d, 60), func(c *Config) {
				c.Columns = []string{"region", "id", "updated_at", "employee"}
				c.Where = "region = 'north'"
				c.PageSize = 4
			})
			var sink memSink
			if err := src.Extract(context.Background(), extract.Window{From: base, To: base.AddDate(0, 0, 1)}, &sink); err != nil {
				t.Fatal(err)
			}
			if len(sink.records) != 20 {
				t.Fatalf("%d rows, want the 20 of region north", len(sink.records))
			}
			if got := string(sink.records[1].Payload); got != `{"region":"north","id":3,"updated_at":"2025-08-01T00:20:00Z","employee":"E0003"}` {
				t.Fatalf("payload %s", got)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	cfg := Config{Name: "x", Driver: "oracle", Table: "a b", KeyColumns: []string{"id;"}, Columns: []string{"id"}}
	err := cfg.Validate()
	for _, want := range []string{`driver "oracle"`, "dsn_env", `table "a b"`, `key_columns "id;"`, "cursor_column is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	_, err = Open(context.Background(), Config{Name: "x", Driver: Postgres, DSNEnv: "NOPE", Table: "t", KeyColumns: []string{"id"}, CursorColumn: "u"},
		func(string) string { return "" }, nil)
	if err == nil || !strings.Contains(err.Error(), "NOPE") {
		t.Fatalf("error %v", err)
	}
}

func TestQueryErrorNamesTheWindow(t *testing.T) {
	d := databases(t)[0]
	src := open(t, d, seed(t, d, 3), func(c *Config) { c.Where = "no_such_column = 1" })
	w := extract.Window{From: base, To: base.AddDate(0, 0, 1)}
	err := src.Extract(context.Background(), w, &memSink{})
	var target interface{ Error() string }
	if err == nil || !errors.As(err, &target) || !strings.Contains(err.Error(), w.String()) || !strings.Contains(err.Error(), "no_such_column") {
		t.Fatalf("error %v", err)
	}
}
