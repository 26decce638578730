package page

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func before(d time.Duration) time.Time { return now.Add(-d) }

func sp(s health.State, from time.Time) health.Span { return health.Span{State: s, From: from} }

func TestTimeline(t *testing.T) {
	type seg struct {
		State health.State
		X, W  float64
	}
	tests := []struct {
		name    string
		history []health.Span
		known   time.Time
		window  time.Duration
		want    []seg
	}{
		{"known before the window", []health.Span{sp(health.Online, before(48*time.Hour)), sp(health.Disconnected, before(6*time.Hour))}, before(48 * time.Hour), 24 * time.Hour,
			[]seg{{health.Online, 0, 750}, {health.Disconnected, 750, 250}}},
		{"known inside the window: unknown before", []health.Span{sp(health.NeverSeen, before(12*time.Hour)), sp(health.Online, before(6*time.Hour))}, before(12 * time.Hour), 24 * time.Hour,
			[]seg{{Unknown, 0, 500}, {health.NeverSeen, 500, 250}, {health.Online, 750, 250}}},
		{"7 days", []health.Span{sp(health.Online, before(10*24*time.Hour)), sp(health.Slow, before(7*24*time.Hour/2))}, before(10 * 24 * time.Hour), 7 * 24 * time.Hour,
			[]seg{{health.Online, 0, 500}, {health.Slow, 500, 500}}},
		{"no history at all", nil, time.Time{}, 24 * time.Hour, []seg{{Unknown, 0, 1000}}},
		{"a state change in the future is cut at now", []health.Span{sp(health.Online, before(time.Hour)), sp(health.Slow, now.Add(time.Hour))}, before(time.Hour), 24 * time.Hour,
			[]seg{{Unknown, 0, 958.3}, {health.Online, 958.3, 41.7}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []seg
			var total float64
			for _, s := range Timeline(tt.history, tt.known, now, tt.window) {
				got = append(got, seg{s.State, math.Round(s.X*10) / 10, math.Round(s.W*10) / 10})
				total += s.W
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Timeline (-want +got):\n%s", diff)
			}
			if math.Abs(total-Width) > 1e-6 {
				t.Errorf("segments cover %v of %v", total, Width)
			}
		})
	}
}

func fleet() []health.Device {
	mk := func(serial, name, site, team string, st health.State, since time.Duration) health.Device {
		d := health.Device{Serial: serial, Name: name, Site: site, Team: team, State: st, StateSince: before(since), KnownSince: before(30 * 24 * time.Hour),
			Heartbeats: 10, LastSeenAt: before(time.Minute), LastSyncAt: before(2 * time.Minute), LatencyMS: 35, RecordCapacity: 100000, CapacityUsed: 0.4, Records: 40000, RecordsAtSync: 40000,
			History: []health.Span{sp(health.Online, before(30*24*time.Hour))}}
		if st != health.Online {
			d.History = append(d.History, health.Span{State: st, From: before(since)})
			d.Conditions = map[health.State]health.Condition{st: {Active: true, Since: before(since), Detail: "detail of " + string(st)}}
		}
		return d
	}
	return []health.Device{
		mk("HQ-1", "Main door", "hq", "facilities", health.Online, 30*24*time.Hour),
		mk("HQ-2", "Back <door>", "hq", "facilities", health.Disconnected, 3*time.Hour),
		mk("HQ-3", "", "hq", "", health.Slow, 20*time.Minute),
		mk("PL-1", "Gate", "plant", "ops", health.StorageFull, 4*24*time.Hour),
		mk("PL-2", "Gate 2", "plant", "ops", health.Online, 30*24*time.Hour),
	}
}

func serve(t *testing.T, target string) (int, string) {
	t.Helper()
	p := New(func(context.Context) ([]health.Device, error) { return fleet(), nil }, Options{Now: func() time.Time { return now }, Refresh: 30 * time.Second})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", p.ServeHTML)
	mux.HandleFunc("GET /api/devices", p.ServeAPI)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

var deviceRE = regexp.MustCompile(`<article class="device" id="dev-[^"]+" data-device="([^"]+)" data-state="([^"]+)">`)

func devicesIn(html string) []string {
	var out []string
	for _, m := range deviceRE.FindAllStringSubmatch(html, -1) {
		out = append(out, m[1]+"="+m[2])
	}
	return out
}

func TestStatusPage(t *testing.T) {
	code, html := serve(t, "/")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, html)
	}
	// Grouped by site, then by state, most severe first.
	want := []string{"HQ-2=disconnected", "HQ-3=slow", "HQ-1=online", "PL-1=storage_full", "PL-2=online"}
	if diff := cmp.Diff(want, devicesIn(html)); diff != "" {
		t.Errorf("devices (-want +got):\n%s", diff)
	}
	for _, w := range []string{
		`<meta http-equiv="refresh" content="30">`,
		`<section class="site" data-site="hq">`,
		`<section class="site" data-site="plant">`,
		`Back &lt;door&gt;`, // escaped
		`<b>disconnected</b> since 09:00: detail of disconnected`,
		`<svg class="timeline" data-window="24h"`,
		`<svg class="timeline" data-window="7d"`,
		`5 of 5 devices shown`,
	} {
		if !strings.Contains(html, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	if n := strings.Count(html, `<svg class="timeline"`); n != 10 {
		t.Errorf("%d timelines, want 2 per device", n)
	}
	// HQ-2's 24-hour timeline: online for 21 hours, disconnected for 3.
	i := strings.Index(html, `data-device="HQ-2"`)
	tl := html[i:]
	tl = tl[strings.Index(tl, `data-window="24h"`):]
	tl = tl[:strings.Index(tl, "</svg>")]
	if !strings.Contains(tl, `data-state="online" x="0.0" y="0" width="875.0"`) || !strings.Contains(tl, `data-state="disconnected" x="875.0" y="0" width="125.0"`) {
		t.Errorf("HQ-2 24h timeline:\n%s", tl)
	}
}

func TestStatusPageFilters(t *testing.T) {
	tests := []struct {
		query string
		want  []string
	}{
		{"site=plant", []string{"PL-1=storage_full", "PL-2=online"}},
		{"state=online", []string{"HQ-1=online", "PL-2=online"}},
		{"team=facilities", []string{"HQ-2=disconnected", "HQ-1=online"}},
		{"q=gate", []string{"PL-1=storage_full", "PL-2=online"}},
		{"q=hq-3", []string{"HQ-3=slow"}},
		{"site=hq&state=slow", []string{"HQ-3=slow"}},
		{"site=mars", nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			_, html := serve(t, "/?"+tt.query)
			if diff := cmp.Diff(tt.want, devicesIn(html)); diff != "" {
				t.Errorf("devices (-want +got):\n%s", diff)
			}
			if tt.want == nil && !strings.Contains(html, "No device matches these filters.") {
				t.Error("no empty-state message")
			}
		})
	}
	// The state chips keep the other filters and toggle their own.
	_, html := serve(t, "/?site=hq&state=slow")
	if !strings.Contains(html, `href="?site=hq" data-state="slow"`) || !strings.Contains(html, `href="?site=hq&amp;state=online" data-state="online"`) {
		t.Error("state chips do not keep the site filter or toggle the state")
	}
}

func TestAPIDevices(t *testing.T) {
	code, body := serve(t, "/api/devices?site=hq")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	var resp APIResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Total != 3 || resp.Counts["disconnected"] != 1 || resp.Counts["online"] != 1 || resp.Filter.Site != "hq" || !resp.GeneratedAt.Equal(now) {
		t.Errorf("response %+v", resp)
	}
	if resp.Devices[0].Serial != "HQ-2" || len(resp.Devices[0].History) != 2 || !resp.Devices[0].Active(health.Disconnected) {
		t.Errorf("first device %+v", resp.Devices[0])
	}
	if got := ParseFilter(url.Values{"q": {"  x "}}); got.Q != "x" {
		t.Errorf("ParseFilter trims q: %+v", got)
	}
}

func TestCompressed(t *testing.T) {
	p := New(func(context.Context) ([]health.Device, error) { return fleet(), nil }, Options{Now: func() time.Time { return now }})
	for _, h := range []http.HandlerFunc{p.ServeHTML, p.ServeAPI} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Accept-Encoding", "gzip, deflate")
		rec := httptest.NewRecorder()
		h(rec, req)
		if rec.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("not compressed: %v", rec.Header())
		}
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil || !strings.Contains(string(b), "HQ-2") {
			t.Fatalf("decompressed body (%v): %.200s", err, b)
		}
	}
}
