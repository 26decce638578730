// Package page serves healthwatch's status page and its JSON twin: the
// fleet grouped by site and state, a 24-hour and a 7-day SVG timeline per
// device drawn from the state history, filters as query parameters
// (site, state, team, q), and an automatic refresh. The page is rendered on
// the server with html/template from an embedded file: no front-end build.
package page

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
)

//go:embed templates/status.html
var files embed.FS

// Fleet returns every device healthwatch knows.
type Fleet func(ctx context.Context) ([]health.Device, error)

// Options shape the page.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Loc is the zone times are shown in; nil means UTC.
	Loc *time.Location
	// Refresh is the automatic reload interval; 0 disables it.
	Refresh time.Duration
	// Title heads the page.
	Title string
}

// Page renders the status page. It is safe for concurrent use.
type Page struct {
	fleet Fleet
	opts  Options
	tmpl  *template.Template
}

// New returns the page over fleet.
func New(fleet Fleet, opts Options) *Page {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Loc == nil {
		opts.Loc = time.UTC
	}
	if opts.Title == "" {
		opts.Title = "punchflow device health"
	}
	p := &Page{fleet: fleet, opts: opts}
	p.tmpl = template.Must(template.New("status.html").Funcs(template.FuncMap{
		"label":  func(s health.State) string { return s.Label() },
		"when":   p.when,
		"ago":    func(t time.Time) string { return ago(t, p.opts.Now()) },
		"pct":    func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
		"human":  health.Human,
		"ms":     func(f float64) string { return health.Human(time.Duration(f * float64(time.Millisecond))) },
		"offset": func(ms int64) string { return health.Human(time.Duration(ms) * time.Millisecond) },
	}).ParseFS(files, "templates/status.html"))
	return p
}

// Filter is what the query string selects. Empty fields select everything.
type Filter struct {
	Site  string `json:"site,omitempty"`
	State string `json:"state,omitempty"`
	Team  string `json:"team,omitempty"`
	Q     string `json:"q,omitempty"`
}

// ParseFilter reads site, state, team and q from a query.
func ParseFilter(q url.Values) Filter {
	return Filter{Site: q.Get("site"), State: q.Get("state"), Team: q.Get("team"), Q: strings.TrimSpace(q.Get("q"))}
}

// Match reports whether d passes f. A device matches a state when that is
// its state or one of its active conditions.
func (f Filter) Match(d health.Device) bool {
	if f.Site != "" && d.Site != f.Site {
		return false
	}
	if f.Team != "" && d.Team != f.Team {
		return false
	}
	if f.State != "" && string(d.State) != f.State && !d.Active(health.State(f.State)) {
		return false
	}
	if f.Q != "" {
		q := strings.ToLower(f.Q)
		if !strings.Contains(strings.ToLower(d.Serial), q) && !strings.Contains(strings.ToLower(d.Name), q) {
			return false
		}
	}
	return true
}

// Query renders f with one field changed, for links.
func (f Filter) with(key, val string) template.URL {
	v := url.Values{}
	set := func(k, x string) {
		if x != "" {
			v.Set(k, x)
		}
	}
	m := map[string]string{"site": f.Site, "state": f.State, "team": f.Team, "q": f.Q}
	m[key] = val
	for _, k := range []string{"site", "state", "team", "q"} {
		set(k, m[k])
	}
	if len(v) == 0 {
		return "?"
	}
	return template.URL("?" + v.Encode())
}

// APIResponse is the /api/devices body.
type APIResponse struct {
	GeneratedAt time.Time       `json:"generated_at"`
	Filter      Filter          `json:"filter"`
	Counts      map[string]int  `json:"counts"`
	Total       int             `json:"total"`
	Devices     []health.Device `json:"devices"`
}

// ServeAPI answers GET /api/devices with the filtered devices as JSON.
func (p *Page) ServeAPI(w http.ResponseWriter, r *http.Request) {
	devs, err := p.fleet(r.Context())
	if err != nil {
		http.Error(w, "read device state: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	f := ParseFilter(r.URL.Query())
	resp := APIResponse{GeneratedAt: p.opts.Now().UTC(), Filter: f, Counts: map[string]int{}, Devices: []health.Device{}}
	for _, d := range sorted(devs) {
		if f.Match(d) {
			resp.Devices = append(resp.Devices, d)
			resp.Counts[string(d.State)]++
		}
	}
	resp.Total = len(resp.Devices)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	out, done := compress(w, r)
	defer done()
	_ = json.NewEncoder(out).Encode(resp)
}

// ServeHTML answers GET / with the status page.
func (p *Page) ServeHTML(w http.ResponseWriter, r *http.Request) {
	devs, err := p.fleet(r.Context())
	if err != nil {
		http.Error(w, "read device state: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	var buf bytes.Buffer
	if err := p.tmpl.Execute(&buf, p.view(devs, ParseFilter(r.URL.Query()))); err != nil {
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	out, done := compress(w, r)
	defer done()
	_, _ = buf.WriteTo(out)
}

// compress gzips the response when the client accepts it: a large fleet's
// page is megabytes of repetitive SVG that shrinks twentyfold.
func compress(w http.ResponseWriter, r *http.Request) (io.Writer, func()) {
	w.Header().Add("Vary", "Accept-Encoding")
	if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		return w, func() {}
	}
	w.Header().Set("Content-Encoding", "gzip")
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	return gz, func() { _ = gz.Close() }
}

type view struct {
	Title       string
	Now         time.Time
	Zone        string
	RefreshSecs int
	Filter      Filter
	Sites       []string
	Teams       []string
	States      []stateCount
	Total       int
	Shown       int
	Groups      []siteGroup
	Clear       template.URL
}

type stateCount struct {
	State    health.State
	Count    int
	Link     template.URL
	Selected bool
}

type siteGroup struct {
	Site   string
	Counts []stateCount
	States []stateGroup
}

type stateGroup struct {
	State   health.State
	Devices []deviceView
}

type deviceView struct {
	health.Device
	Waiting int
	Conds   []condView
	// Timelines is the rendered 24-hour and 7-day timelines: built in Go
	// with every text escaped, because a large fleet has tens of thousands
	// of segments and template reflection per segment is what a page's
	// time went to.
	Timelines template.HTML
}

type condView struct {
	State  health.State
	Since  time.Time
	Detail string
}

type timelineView struct {
	Window   string
	Label    string
	Segments []Segment
	Ticks    []tick
}

type tick struct {
	X     float64
	Label string
}

func (p *Page) view(devs []health.Device, f Filter) view {
	now := p.opts.Now()
	v := view{Title: p.opts.Title, Now: now, Zone: p.opts.Loc.String(), RefreshSecs: int(p.opts.Refresh / time.Second), Filter: f, Total: len(devs), Clear: "?"}
	counts := map[health.State]int{}
	bySite := map[string]map[health.State][]deviceView{}
	for _, d := range sorted(devs) {
		if d.Site != "" && !slices.Contains(v.Sites, d.Site) {
			v.Sites = append(v.Sites, d.Site)
		}
		if d.Team != "" && !slices.Contains(v.Teams, d.Team) {
			v.Teams = append(v.Teams, d.Team)
		}
		if !f.Match(d) {
			continue
		}
		counts[d.State]++
		v.Shown++
		site := d.Site
		if bySite[site] == nil {
			bySite[site] = map[health.State][]deviceView{}
		}
		bySite[site][d.State] = append(bySite[site][d.State], p.deviceView(d, now))
	}
	sort.Strings(v.Sites)
	sort.Strings(v.Teams)
	for _, s := range health.States() {
		v.States = append(v.States, stateCount{State: s, Count: counts[s], Link: f.with("state", toggle(f.State, string(s))), Selected: f.State == string(s)})
	}
	sites := make([]string, 0, len(bySite))
	for s := range bySite {
		sites = append(sites, s)
	}
	sort.Strings(sites)
	for _, s := range sites {
		g := siteGroup{Site: s}
		for _, st := range health.States() {
			if ds := bySite[s][st]; len(ds) > 0 {
				g.States = append(g.States, stateGroup{State: st, Devices: ds})
				g.Counts = append(g.Counts, stateCount{State: st, Count: len(ds)})
			}
		}
		v.Groups = append(v.Groups, g)
	}
	return v
}

func (p *Page) deviceView(d health.Device, now time.Time) deviceView {
	dv := deviceView{Device: d, Waiting: d.RecordsWaiting()}
	for _, c := range d.ActiveConditions() {
		dv.Conds = append(dv.Conds, condView{State: c, Since: d.Conditions[c].Since, Detail: d.Conditions[c].Detail})
	}
	var b strings.Builder
	for _, w := range []struct {
		name, label string
		d           time.Duration
		ticks       int
		step        time.Duration
		format      string
	}{
		{"24h", "last 24 hours", 24 * time.Hour, 4, 6 * time.Hour, "15:04"},
		{"7d", "last 7 days", 7 * 24 * time.Hour, 7, 24 * time.Hour, "Mon"},
	} {
		tv := timelineView{Window: w.name, Label: w.label, Segments: Timeline(d.History, d.KnownSince, now, w.d)}
		start := now.Add(-w.d)
		for i := 0; i < w.ticks; i++ {
			at := start.Add(time.Duration(i) * w.step)
			tv.Ticks = append(tv.Ticks, tick{X: float64(at.Sub(start)) / float64(w.d) * Width, Label: at.In(p.opts.Loc).Format(w.format)})
		}
		p.writeTimeline(&b, tv)
	}
	dv.Timelines = template.HTML(b.String())
	return dv
}

// writeTimeline renders one timeline: an SVG bar of segments, each with a
// tooltip, and an axis of tick labels.
func (p *Page) writeTimeline(b *strings.Builder, tv timelineView) {
	esc := html.EscapeString
	fmt.Fprintf(b, `<div class="tl-wrap"><div class="tl-label"><span>%s</span><span>now</span></div>`, esc(tv.Label))
	fmt.Fprintf(b, `<svg class="timeline" data-window="%s" viewBox="0 0 %.0f 14" preserveAspectRatio="none" role="img" aria-label="%s">`, esc(tv.Window), Width, esc(tv.Label))
	for _, s := range tv.Segments {
		st := esc(string(s.State))
		fmt.Fprintf(b, `<rect class="s-%s" data-state="%s" x="%.1f" y="0" width="%.1f" height="14"><title>%s: %s – %s (%s)</title></rect>`,
			st, st, s.X, s.W, esc(s.State.Label()), esc(p.when(s.From)), esc(p.when(s.To)), esc(health.Human(s.To.Sub(s.From))))
	}
	b.WriteString(`</svg><div class="axis" aria-hidden="true">`)
	for _, t := range tv.Ticks {
		fmt.Fprintf(b, `<span style="left:%.2f%%">%s</span>`, t.X/Width*100, esc(t.Label))
	}
	b.WriteString(`</div></div>`)
}

func (p *Page) when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	lt, ln := t.In(p.opts.Loc), p.opts.Now().In(p.opts.Loc)
	if y, m, d := lt.Date(); y == ln.Year() && m == ln.Month() && d == ln.Day() {
		return lt.Format("15:04")
	}
	return lt.Format("Mon 02 Jan 15:04")
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	if d < time.Minute {
		return "just now"
	}
	return health.Human(d.Truncate(time.Minute)) + " ago"
}

func toggle(cur, v string) string {
	if cur == v {
		return ""
	}
	return v
}

func sorted(devs []health.Device) []health.Device {
	out := slices.Clone(devs)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Site != out[j].Site {
			return out[i].Site < out[j].Site
		}
		if out[i].State.Severity() != out[j].State.Severity() {
			return out[i].State.Severity() < out[j].State.Severity()
		}
		return out[i].Serial < out[j].Serial
	})
	return out
}
