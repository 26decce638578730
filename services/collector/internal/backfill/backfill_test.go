package backfill

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/apisim"
	"github.com/punchflow/punchflow/services/collector/internal/apisource"
	"github.com/punchflow/punchflow/services/collector/internal/extract"
	"github.com/punchflow/punchflow/services/collector/internal/jstest"
	"github.com/punchflow/punchflow/services/collector/internal/publish"
	"github.com/punchflow/punchflow/services/collector/internal/sources"
)

func TestSplit(t *testing.T) {
	got, err := Split("2025-08-01", "2025-08-31", 7, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	var days []string
	for _, w := range got {
		days = append(days, w.First+".."+w.Last)
	}
	want := []string{"2025-08-01..2025-08-07", "2025-08-08..2025-08-14", "2025-08-15..2025-08-21", "2025-08-22..2025-08-28", "2025-08-29..2025-08-31"}
	if diff := cmp.Diff(want, days); diff != "" {
		t.Fatalf("windows (-want +got):\n%s", diff)
	}
	if !got[4].To.Equal(time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)) || Key("shop orders", got[0]) != "backfill.shop_orders.2025-08-01.2025-08-07" {
		t.Fatalf("last window %+v key %s", got[4], Key("shop orders", got[0]))
	}
	// Days are local days: the window over the end of summer time in
	// Berlin is 25 hours long.
	berlin, _ := time.LoadLocation("Europe/Berlin")
	dst, err := Split("2025-10-26", "2025-10-26", 1, berlin)
	if err != nil || dst[0].To.Sub(dst[0].From) != 25*time.Hour || !dst[0].From.Equal(time.Date(2025, 10, 25, 22, 0, 0, 0, time.UTC)) {
		t.Fatalf("berlin %+v %v", dst, err)
	}
	for _, bad := range [][3]string{{"2025-08-02", "2025-08-01", "1"}, {"2025-8-1", "2025-08-02", "1"}, {"2025-08-01", "2025-08-02", "31"}, {"2025-08-01", "2025-08-02", "0"}} {
		n := 1
		fmt.Sscan(bad[2], &n)
		if _, err := Split(bad[0], bad[1], n, time.UTC); err == nil {
			t.Errorf("Split%v accepted", bad)
		}
	}
}

func TestParsePerSource(t *testing.T) {
	cases := []struct {
		in   string
		all  string
		per  map[string]string
		fail bool
	}{
		{"", "", map[string]string{}, false},
		{"3", "3", map[string]string{}, false},
		{"a:3,b:5", "", map[string]string{"a": "3", "b": "5"}, false},
		{"4, a:parallel", "4", map[string]string{"a": "parallel"}, false},
		{"a:3,a:4", "", nil, true},
		{"3,4", "", nil, true},
		{"a:", "", nil, true},
	}
	for _, tc := range cases {
		all, per, err := ParsePerSource(tc.in)
		if (err != nil) != tc.fail || all != tc.all || (!tc.fail && !cmp.Equal(per, tc.per)) {
			t.Errorf("ParsePerSource(%q) = %q, %v, %v", tc.in, all, per, err)
		}
	}
}

var (
	from = time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)
	days = 10
)

// fixture is one simulator per dataset (so that each can fail on its own)
// and a source over each.
type fixture struct {
	env  *jstest.Env
	sims map[string]*apisim.Server
	srcs map[string]*apisource.Source
}

var styles = map[apisim.Dataset]string{apisim.Orders: "page", apisim.Tickets: "cursor", apisim.Payments: "offset"}

func newFixture(t *testing.T, records int) *fixture {
	t.Helper()
	fx := &fixture{env: jstest.Start(t, true), sims: map[string]*apisim.Server{}, srcs: map[string]*apisource.Source{}}
	for i, ds := range apisim.Datasets {
		faults := apisim.Faults{Latency: 3 * time.Millisecond}
		if ds == apisim.Orders {
			faults.Duplicates = 0.3
		}
		sim, err := apisim.Start(apisim.Config{Seed: uint64(i + 1), From: from, To: from.AddDate(0, 0, days), Records: records, Faults: faults}, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sim.Close() })
		f, err := sources.Parse([]byte("api:\n" + apisim.SourceYAML(string(ds), sim.URL(), styles[ds], ds, 25, "")))
		if err != nil {
			t.Fatal(err)
		}
		cfg := f.API[0].Config
		cfg.Retry.Attempts, cfg.Retry.Base, cfg.Retry.Max = 2, 5*time.Millisecond, 20*time.Millisecond
		src, err := apisource.New(cfg, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		fx.sims[string(ds)], fx.srcs[string(ds)] = sim, src
	}
	return fx
}

func (fx *fixture) jobs(t *testing.T) []Job {
	t.Helper()
	var jobs []Job
	for _, c := range []struct {
		ds       apisim.Dataset
		chunk    int
		parallel bool
	}{{apisim.Orders, 2, true}, {apisim.Tickets, 1, false}, {apisim.Payments, 3, true}} {
		ws, err := Split("2025-08-01", "2025-08-10", c.chunk, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, Job{Source: fx.srcs[string(c.ds)], Windows: ws, Parallel: c.parallel, Workers: 3})
	}
	return jobs
}

func (fx *fixture) options() Options {
	return Options{
		Deps:          extract.Deps{Pub: fx.env.JS, DLQ: fx.env.DLQ, Metrics: fx.env.Metrics, Log: fx.env.Log, Publish: publish.Options{Window: 64}},
		KV:            fx.env.KV,
		WindowRetries: -1,
	}
}

// checkExactlyOnce reads RAW and checks that every record of every dataset
// is there exactly once: no id twice, no key missing, nothing extra.
func (fx *fixture) checkExactlyOnce(t *testing.T) {
	t.Helper()
	for _, ds := range apisim.Datasets {
		msgs := fx.env.Msgs(t, "RAW", proto.RawRecordSubject(string(ds)))
		ids := map[string]bool{}
		var keys []string
		for _, m := range msgs {
			r, err := proto.DecodeRawRecord(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			if ids[r.ID] {
				t.Fatalf("%s: record %s (%s) is in RAW twice", ds, r.NaturalKey, r.ID)
			}
			ids[r.ID] = true
			keys = append(keys, r.NaturalKey)
		}
		sim := fx.sims[string(ds)]
		n := sim.Count(ds, from, from.AddDate(0, 0, days))
		var want []string
		for k := range n {
			want = append(want, apisim.Key(ds, k))
		}
		sort.Strings(want)
		sort.Strings(keys)
		if diff := cmp.Diff(want, keys); diff != "" {
			t.Fatalf("%s: keys in RAW (-want +got):\n%s", ds, diff)
		}
	}
}

func TestKilledAndFailingBackfillRerunPublishesEveryRecordOnce(t *testing.T) {
	fx := newFixture(t, 1500)
	ctx, kill := context.WithCancel(context.Background())
	defer kill()

	// Run 1: payments' API fails after its first window; once a payments
	// window has failed, the run is killed abruptly, with windows of the
	// other sources in flight.
	o := fx.options()
	var once sync.Once
	o.Progress = func(p Progress) {
		switch {
		case p.Source == "payments" && p.Failed >= 1:
			once.Do(kill)
		case p.Source == "payments" && p.Done >= 1:
			fx.sims["payments"].SetFaults(apisim.Faults{ServerError: 1})
		}
	}
	sum1, err := Run(ctx, fx.jobs(t), o)
	if err == nil {
		t.Fatal("the killed run reported success")
	}
	byName := func(s Summary) map[string]Progress {
		m := map[string]Progress{}
		for _, p := range s.Sources {
			m[p.Source] = p
		}
		return m
	}
	p1 := byName(sum1)
	if p1["tickets"].Done == 10 || p1["payments"].Done < 1 || p1["payments"].Failed < 1 {
		t.Fatalf("run 1 did not fail and stop midway: %+v", sum1.Sources)
	}
	// Windows the kill interrupted are left "running" for the rerun.
	running := 0
	for _, j := range fx.jobs(t) {
		for _, w := range j.Windows {
			if rec, _, ok, _ := load(context.Background(), fx.env.KV, Key(j.Source.Name(), w)); ok && rec.State == StateRunning {
				running++
			}
		}
	}
	if running == 0 {
		t.Fatalf("the kill interrupted no window: %+v", sum1.Sources)
	}
	rawAfter1 := fx.env.Count(t, "RAW", "")
	if _, ok, _ := extract.LoadCursor(context.Background(), fx.env.KV, "tickets"); ok {
		t.Fatal("the live cursor moved although the range is incomplete")
	}

	// Run 2: the API is back; the rerun skips the finished windows and
	// completes the rest.
	fx.sims["payments"].SetFaults(apisim.Faults{})
	sum2, err := Run(context.Background(), fx.jobs(t), fx.options())
	if err != nil {
		t.Fatalf("rerun: %v (%+v)", err, sum2.Sources)
	}
	p2 := byName(sum2)
	for name, p := range p2 {
		if p.Skipped != p1[name].Done || p.Skipped+p.Done != p.Total || p.Failed != 0 {
			t.Errorf("%s rerun %+v after run 1 %+v", name, p, p1[name])
		}
	}
	if n := fx.env.Count(t, "RAW", ""); n <= rawAfter1 {
		t.Fatalf("RAW %d after the rerun, %d before", n, rawAfter1)
	}
	fx.checkExactlyOnce(t)

	// Every window is recorded done, and each live cursor continues after
	// the range.
	for _, j := range fx.jobs(t) {
		for _, w := range j.Windows {
			rec, _, ok, err := load(context.Background(), fx.env.KV, Key(j.Source.Name(), w))
			if err != nil || !ok || rec.State != StateDone {
				t.Fatalf("%s %s: %+v %v", j.Source.Name(), Key(j.Source.Name(), w), rec, err)
			}
		}
		c, ok, err := extract.LoadCursor(context.Background(), fx.env.KV, j.Source.Name())
		if err != nil || !ok || !c.Until.Equal(from.AddDate(0, 0, days)) {
			t.Fatalf("%s cursor %+v %v %v", j.Source.Name(), c, ok, err)
		}
	}

	// Run 3: nothing left to do; nothing is read.
	before := fx.sims["orders"].Stats().Requests
	sum3, err := Run(context.Background(), fx.jobs(t), fx.options())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sum3.Sources {
		if p.Skipped != p.Total || p.Records != 0 {
			t.Fatalf("run 3 %+v", p)
		}
	}
	if after := fx.sims["orders"].Stats().Requests; after != before {
		t.Fatalf("run 3 sent %d requests", after-before)
	}
}

func TestOneFailingSourceNeverBlocksAnother(t *testing.T) {
	fx := newFixture(t, 300)
	fx.sims["payments"].SetFaults(apisim.Faults{ServerError: 1})
	sum, err := Run(context.Background(), fx.jobs(t), fx.options())
	if err == nil || !strings.Contains(err.Error(), "payments") || strings.Contains(err.Error(), "orders") {
		t.Fatalf("error %v", err)
	}
	for _, p := range sum.Sources {
		switch p.Source {
		case "payments":
			if p.Failed != p.Total || !errors.Is(p.Err, extract.ErrUnavailable) {
				t.Errorf("payments %+v", p)
			}
		default:
			if p.Done != p.Total || p.Err != nil {
				t.Errorf("%s %+v", p.Source, p)
			}
		}
	}
	// The failed windows are recorded as failed, with the reason.
	ws, _ := Split("2025-08-01", "2025-08-10", 3, time.UTC)
	rec, _, _, _ := load(context.Background(), fx.env.KV, Key("payments", ws[0]))
	if rec.State != StateFailed || !strings.Contains(rec.Error, "HTTP 500") || rec.Attempts != 1 {
		t.Fatalf("payments window record %+v", rec)
	}
	if _, ok, _ := extract.LoadCursor(context.Background(), fx.env.KV, "payments"); ok {
		t.Fatal("payments cursor moved")
	}
}

func TestSequentialStopsAtTheFirstFailedWindow(t *testing.T) {
	fx := newFixture(t, 300)
	fx.sims["tickets"].SetFaults(apisim.Faults{ServerError: 1})
	sum, err := Run(context.Background(), fx.jobs(t)[1:2], fx.options())
	if err == nil {
		t.Fatal("no error")
	}
	p := sum.Sources[0]
	if p.Failed != 1 || p.Done != 0 || p.Remaining() != 9 {
		t.Fatalf("tickets %+v", p)
	}
	if reqs := fx.sims["tickets"].Stats().Requests; reqs != 3 {
		t.Fatalf("%d requests, want the 3 attempts of the first window only", reqs)
	}
}

func TestProgressLineAndSummary(t *testing.T) {
	start := time.Date(2025, 9, 1, 10, 0, 0, 0, time.UTC)
	p := Progress{Source: "orders", Total: 10, Skipped: 2, Done: 3, Running: 2, Records: 12345, Started: start}
	got := progressLine(p, 8, start.Add(3*time.Second))
	want := "orders    [##########----------]  5/10 windows  12,345 records  4,115 rec/s  ETA 5s  2 running"
	if got != want {
		t.Fatalf("progress line\n got %q\nwant %q", got, want)
	}
	p.Finished, p.Done, p.Running = true, 8, 0
	if got := progressLine(p, 6, start.Add(time.Minute)); !strings.HasSuffix(got, "done") {
		t.Fatalf("finished line %q", got)
	}
	var b strings.Builder
	writeSummary(&b, Summary{RunID: "r1", Duration: 2 * time.Second, Sources: []Progress{
		{Source: "orders", Total: 10, Skipped: 2, Done: 8, Records: 4000, Dups: 12},
		{Source: "tickets", Total: 10, Done: 4, Failed: 1, Records: 1000, Err: errors.New("window 2025-08-05: HTTP 500")},
	}})
	for _, want := range []string{
		"backfill run r1 finished in 2s",
		"orders 10 2 8 0 4,000 12 0 2,000",
		"total 20 2 12 1 5,000 12 0 2,500",
		"tickets: window 2025-08-05: HTTP 500",
		"incomplete: tickets; rerun the same command to resume",
	} {
		if !strings.Contains(squeeze(b.String()), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}
