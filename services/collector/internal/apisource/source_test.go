package apisource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/apisim"
	"github.com/punchflow/punchflow/services/collector/internal/extract"
)

// memSink collects what a source extracts (the publishing side is tested
// with a real JetStream in package extract and backfill).
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

func (m *memSink) keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, r := range m.records {
		if !seen[r.NaturalKey] {
			seen[r.NaturalKey] = true
			out = append(out, r.NaturalKey)
		}
	}
	sort.Strings(out)
	return out
}

var (
	simFrom = time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)
	simTo   = simFrom.AddDate(0, 0, 10)
)

func startSim(t *testing.T, cfg apisim.Config) *apisim.Server {
	t.Helper()
	if cfg.From.IsZero() {
		cfg.From, cfg.To = simFrom, simTo
	}
	if cfg.Records == 0 {
		cfg.Records = 400
	}
	s, err := apisim.Start(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// parseConfig reads the declaration apisim writes for itself, as the
// sources file would hold it.
func parseConfig(t *testing.T, text string) Config {
	t.Helper()
	var doc struct {
		API []Config `yaml:"api"`
	}
	dec := yaml.NewDecoder(strings.NewReader("api:\n" + text))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("parse %s: %v", text, err)
	}
	return doc.API[0]
}

func simSource(t *testing.T, sim *apisim.Server, style string, ds apisim.Dataset, pageSize int, edit func(*Config)) *Source {
	t.Helper()
	cfg := parseConfig(t, apisim.SourceYAML("sim-"+string(ds), sim.URL(), style, ds, pageSize, ""))
	cfg.Retry.Base, cfg.Retry.Max = 5*time.Millisecond, 50*time.Millisecond
	if edit != nil {
		edit(&cfg)
	}
	src, err := New(cfg, func(string) string { return "" }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// wantKeys is every key the simulator holds in [from, to).
func wantKeys(sim *apisim.Server, ds apisim.Dataset, from, to time.Time) []string {
	cfg := sim.Config()
	var out []string
	all := sim.Count(ds, cfg.From, from)
	n := sim.Count(ds, from, to)
	for k := all; k < all+n; k++ {
		out = append(out, apisim.Key(ds, k))
	}
	sort.Strings(out)
	return out
}

func TestEveryPaginationStyleReadsTheWholeWindow(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 7})
	w := extract.Window{From: simFrom.Add(36 * time.Hour), To: simFrom.Add(6 * 24 * time.Hour)}
	for _, style := range apisim.Styles {
		for _, ds := range apisim.Datasets {
			t.Run(style+"/"+string(ds), func(t *testing.T) {
				src := simSource(t, sim, style, ds, 17, nil)
				var sink memSink
				if err := src.Extract(context.Background(), w, &sink); err != nil {
					t.Fatal(err)
				}
				want := wantKeys(sim, ds, w.From, w.To)
				if len(want) < 100 {
					t.Fatalf("the window holds only %d records; the test needs several pages", len(want))
				}
				if diff := cmp.Diff(want, sink.keys()); diff != "" {
					t.Fatalf("keys (-want +got):\n%s", diff)
				}
				if len(sink.records) != len(want) || len(sink.rejects) != 0 {
					t.Fatalf("%d records (want %d, no duplicates) and %d rejects", len(sink.records), len(want), len(sink.rejects))
				}
				for _, r := range sink.records {
					if r.ObservedAt == nil || r.ObservedAt.Before(w.From) || !r.ObservedAt.Before(w.To) {
						t.Fatalf("record %s observed at %v, outside %s", r.NaturalKey, r.ObservedAt, w)
					}
					if !bytes.HasPrefix(r.Payload, []byte("{")) || bytes.ContainsAny(r.Payload, "\n") {
						t.Fatalf("payload %s", r.Payload)
					}
				}
				if c := src.Counters(); c.Pages < int64(len(want)/17) {
					t.Fatalf("read %d pages for %d records of 17 a page", c.Pages, len(want))
				}
			})
		}
	}
}

func TestDuplicatesAcrossPagesAreHarmless(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 3, Faults: apisim.Faults{Duplicates: 1}})
	for _, style := range apisim.Styles {
		t.Run(style, func(t *testing.T) {
			src := simSource(t, sim, style, apisim.Orders, 10, nil)
			var sink memSink
			w := extract.Window{From: simFrom, To: simTo}
			if err := src.Extract(context.Background(), w, &sink); err != nil {
				t.Fatal(err)
			}
			want := wantKeys(sim, apisim.Orders, w.From, w.To)
			if diff := cmp.Diff(want, sink.keys()); diff != "" {
				t.Fatalf("keys (-want +got):\n%s", diff)
			}
			if len(sink.records) <= len(want) {
				t.Fatalf("%d records for %d keys: the simulator repeated none", len(sink.records), len(want))
			}
			// A repeated record is byte for byte the same: the same id.
			ids := map[string]string{}
			for _, r := range sink.records {
				id := proto.RecordID(r.Source, r.NaturalKey, r.Payload)
				if prev, ok := ids[r.NaturalKey]; ok && prev != id {
					t.Fatalf("record %s came back with other content", r.NaturalKey)
				}
				ids[r.NaturalKey] = id
			}
		})
	}
}

func TestRetriesHonourRetryAfterAndServerErrors(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 1, Faults: apisim.Faults{RetryAfter: 300 * time.Millisecond}})
	src := simSource(t, sim, "cursor", apisim.Tickets, 50, nil)
	sim.Inject(apisim.FaultTooMany, apisim.FaultServerError, apisim.FaultServiceUnavailable, apisim.FaultServerError)
	var sink memSink
	w := extract.Window{From: simFrom, To: simTo}
	start := time.Now()
	if err := src.Extract(context.Background(), w, &sink); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("the window took %v: the 429's Retry-After of 300ms was not waited", took)
	}
	if diff := cmp.Diff(wantKeys(sim, apisim.Tickets, w.From, w.To), sink.keys()); diff != "" {
		t.Fatalf("keys (-want +got):\n%s", diff)
	}
	c := src.Counters()
	if c.Retried != 4 || c.Throttled != 1 {
		t.Fatalf("counters %+v, want 4 retried and 1 throttled", c)
	}
}

func TestTooManyRequestsStormFromParallelWindows(t *testing.T) {
	// The API allows 40 requests a second; eight windows read at once with
	// small pages exceed it many times over, and every record still arrives
	// exactly once. Two retries after errors are allowed: the 429s are the
	// server pacing its clients, bounded only by the budget.
	sim := startSim(t, apisim.Config{Seed: 5, Records: 600, Faults: apisim.Faults{RateLimit: 40}})
	src := simSource(t, sim, "page", apisim.Payments, 10, func(c *Config) { c.Retry.Attempts = 2; c.Retry.Budget = time.Minute })
	var sink memSink
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for d := 0; d < 10; d++ {
		w := extract.Window{From: simFrom.AddDate(0, 0, d), To: simFrom.AddDate(0, 0, d+1)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- src.Extract(context.Background(), w, &sink)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := wantKeys(sim, apisim.Payments, simFrom, simTo)
	if diff := cmp.Diff(want, sink.keys()); diff != "" {
		t.Fatalf("keys (-want +got):\n%s", diff)
	}
	if len(sink.records) != len(want) {
		t.Fatalf("%d records, want %d", len(sink.records), len(want))
	}
	if c := src.Counters(); c.Throttled < 5 || sim.Stats().Status[http.StatusTooManyRequests] != int(c.Throttled) {
		t.Fatalf("counters %+v, simulator %v: not a storm", c, sim.Stats().Status)
	}
}

func TestFailuresThatEndTheWindow(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 9})
	w := extract.Window{From: simFrom, To: simFrom.AddDate(0, 0, 2)}
	cases := []struct {
		name   string
		faults apisim.Faults
		edit   func(*Config)
		is     error
		says   []string
	}{
		{"server errors beyond the budget", apisim.Faults{ServerError: 1}, func(c *Config) { c.Retry.Attempts = 3 }, extract.ErrUnavailable,
			[]string{"HTTP 500", "after 4 attempts", w.String()}},
		{"malformed page", apisim.Faults{Malformed: 1}, nil, extract.ErrMalformed,
			[]string{"not valid JSON", sim.URL() + "/offset/orders?", w.String()}},
		{"Retry-After too long", apisim.Faults{TooMany: 1, RetryAfter: time.Hour}, nil, extract.ErrUnavailable,
			[]string{"Retry-After 1h0m0s", "max_retry_after"}},
		{"slow API", apisim.Faults{Latency: 2 * time.Second}, func(c *Config) { c.Timeout = 50 * time.Millisecond; c.Retry.Attempts = 1 }, context.DeadlineExceeded,
			[]string{"/offset/orders?", w.String()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim.SetFaults(tc.faults)
			defer sim.SetFaults(apisim.Faults{})
			src := simSource(t, sim, "offset", apisim.Orders, 50, tc.edit)
			err := src.Extract(context.Background(), w, &memSink{})
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != context.DeadlineExceeded && !errors.Is(err, tc.is) {
				t.Fatalf("error %v is not %v", err, tc.is)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if class, _ := extract.Classify(err); tc.is == context.DeadlineExceeded && class != proto.ErrorClassTimeout {
				t.Errorf("class %q, want timeout", class)
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	auth := apisim.Auth{Bearer: "tok-1", BasicUser: "etl", BasicPassword: "pw-2", APIKeyHeader: "X-Shop-Key", APIKey: "key-3", ClientID: "collector", ClientSecret: "sec-4"}
	sim := startSim(t, apisim.Config{Seed: 2, Records: 50, Auth: auth})
	env := map[string]string{"TOK": "tok-1", "PW": "pw-2", "KEY": "key-3", "SEC": "sec-4", "BAD": "nope"}
	getenv := func(k string) string { return env[k] }
	cases := []struct {
		name, auth string
		ok         bool
	}{
		{"none", "", false},
		{"bearer", "type: bearer\ntoken_env: TOK", true},
		{"bearer wrong", "type: bearer\ntoken_env: BAD", false},
		{"basic", "type: basic\nusername: etl\npassword_env: PW", true},
		{"basic wrong", "type: basic\nusername: etl\npassword_env: BAD", false},
		{"api key", "type: api_key\nheader: X-Shop-Key\nkey_env: KEY", true},
		{"api key wrong", "type: api_key\nheader: X-Shop-Key\nkey_env: BAD", false},
		{"oauth2", "type: oauth2\ntoken_url: /oauth/token\nclient_id: collector\nclient_secret_env: SEC", true},
		{"oauth2 wrong", "type: oauth2\ntoken_url: /oauth/token\nclient_id: collector\nclient_secret_env: BAD", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := parseConfig(t, apisim.SourceYAML("sim", sim.URL(), "link", apisim.Orders, 20, tc.auth))
			src, err := New(cfg, getenv, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var sink memSink
			err = src.Extract(context.Background(), extract.Window{From: simFrom, To: simTo}, &sink)
			if tc.ok {
				if err != nil || len(sink.records) != 50 {
					t.Fatalf("%d records, %v", len(sink.records), err)
				}
				return
			}
			if !errors.Is(err, extract.ErrUnauthorized) {
				t.Fatalf("error %v, want unauthorized", err)
			}
			if c := src.Counters(); c.Retried != 0 {
				t.Fatalf("refused credentials were retried %d times", c.Retried)
			}
		})
	}
	if n := sim.Stats().Tokens; n != 1 {
		t.Fatalf("%d oauth2 tokens granted, want 1 (reused across pages)", n)
	}
}

func TestRecordsWithoutKeyAreRejectedWithTheirBytes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"items":[{"id":1,"at":"2025-08-01T10:00:00Z"},{"name":"no id"},{"id":{"x":1}},"text",{"id":"a-2","at":"yesterday"}]}`)
	}))
	defer srv.Close()
	src, err := New(Config{Name: "edge", BaseURL: srv.URL, RecordsPath: "items", KeyFields: []string{"id"}, TimeField: "at"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := src.Extract(context.Background(), extract.Window{From: simFrom, To: simTo}, &sink); err != nil {
		t.Fatal(err)
	}
	if got := sink.keys(); !cmp.Equal(got, []string{"1", "a-2"}) {
		t.Fatalf("keys %v", got)
	}
	if sink.records[1].ObservedAt != nil || sink.records[0].ObservedAt == nil {
		t.Fatalf("observed at %v, %v", sink.records[0].ObservedAt, sink.records[1].ObservedAt)
	}
	var got []string
	for _, r := range sink.rejects {
		got = append(got, fmt.Sprintf("%d %s: %s", r.Index, r.Body, r.Reason))
		if !strings.HasPrefix(r.Where, srv.URL) {
			t.Errorf("reject where %q", r.Where)
		}
	}
	want := []string{
		`2 {"name":"no id"}: record has no key field "id"`,
		`3 {"id":{"x":1}}: key field "id" is {"x":1}, not a string or number`,
		`4 "text": record is not a JSON object`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("rejects (-want +got):\n%s", diff)
	}
}

func TestCursorStyleFollowsNextURLsAndStopsOnRepeats(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("p") {
		case "":
			fmt.Fprintf(w, `{"rows":[{"k":1}],"paging":{"next":%q}}`, srv.URL+"/v1/x?p=2")
		case "2":
			fmt.Fprint(w, `{"rows":[{"k":2}],"paging":{"next":null}}`)
		}
	}))
	defer srv.Close()
	cfg := Config{Name: "nexturl", BaseURL: srv.URL, Path: "/v1/x", RecordsPath: "rows", KeyFields: []string{"k"},
		Pagination: Pagination{Style: StyleCursor, NextPath: "paging.next"}}
	src, err := New(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := src.Extract(context.Background(), extract.Window{From: simFrom, To: simTo}, &sink); err != nil {
		t.Fatal(err)
	}
	if got := sink.keys(); !cmp.Equal(got, []string{"1", "2"}) {
		t.Fatalf("keys %v", got)
	}

	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"rows":[{"k":1}],"next_cursor":"same"}`)
	}))
	defer stuck.Close()
	cfg = Config{Name: "stuck", BaseURL: stuck.URL, RecordsPath: "rows", KeyFields: []string{"k"}, Pagination: Pagination{Style: StyleCursor}}
	src, err = New(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = src.Extract(context.Background(), extract.Window{From: simFrom, To: simTo}, &memSink{})
	if !errors.Is(err, extract.ErrMalformed) || !strings.Contains(err.Error(), "does not advance") {
		t.Fatalf("error %v", err)
	}
}

func TestLinkToAnotherOriginIsRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", `<http://evil.example/steal?page=2>; rel="next"`)
		fmt.Fprint(w, `[{"id":1}]`)
	}))
	defer srv.Close()
	src, err := New(Config{Name: "l", BaseURL: srv.URL, KeyFields: []string{"id"}, Pagination: Pagination{Style: StyleLink}}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = src.Extract(context.Background(), extract.Window{From: simFrom, To: simTo}, &memSink{})
	if err == nil || !strings.Contains(err.Error(), "refusing to send credentials") {
		t.Fatalf("error %v", err)
	}
}
