package app

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
	"github.com/punchflow/punchflow/services/healthwatch/internal/page"
)

// chromium finds Debian's chromium. In CI (CI=true) a missing browser fails
// the test with what to install; elsewhere the test is skipped with the
// same instructions.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const how = "the status page test drives a real headless browser: install Debian's chromium with `apt-get install -y chromium` (see .ci/run)"
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found; " + how)
	}
	t.Skip("chromium not found; " + how)
	return ""
}

// headless runs chromium headless with a fresh profile and the given
// extra arguments, and returns its standard output.
func headless(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(), "--hide-scrollbars"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, servicetest.Tail(errOut.String(), 4096))
	}
	return out.Bytes()
}

// artifacts is where the screenshot goes: $PUNCHFLOW_ARTIFACTS if set.
func artifacts(t *testing.T) string {
	if dir := os.Getenv("PUNCHFLOW_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// simulatedFleet is 30 devices over three sites: 28 with a week of
// heartbeats every two hours ending in each state, some with an outage in
// the past, and two configured devices never seen.
type simDevice struct {
	serial, site, name, team string
	final                    health.State
	// outageDaysAgo, when set, puts ten hours of failed sessions that many
	// days back: a disconnected stretch on the 7-day timeline.
	outageDaysAgo int
}

func simulatedFleet() []simDevice {
	finals := []health.State{health.Online, health.Slow, health.Disconnected, health.Unauthorized, health.StorageFull, health.ClockDrift, health.Online}
	sites := []string{"hq", "plant", "depot"}
	teams := map[string]string{"hq": "facilities", "plant": "plant-it", "depot": "plant-it"}
	var out []simDevice
	for i := range 30 {
		site := sites[i%3]
		d := simDevice{serial: fmt.Sprintf("CQUJ%04d", 1000+i), site: site, name: fmt.Sprintf("Gate %d", i+1), team: teams[site], final: finals[i%7]}
		if i >= 28 {
			d.final = health.NeverSeen
		}
		if i%4 == 0 && d.final != health.NeverSeen {
			d.outageDaysAgo = i%5 + 2
		}
		out = append(out, d)
	}
	return out
}

// TestStatusPageInBrowser feeds healthwatch a simulated fleet with a week
// of history, opens the status page in headless chromium, checks that every
// device and both its timelines rendered (laid out with a size, not just
// present in the HTML), that a filter works in the browser, and saves a
// screenshot.
func TestStatusPageInBrowser(t *testing.T) {
	bin := chromium(t)
	ns := natsServer(t)
	hooks := newHook(t, testSecret)
	fleet := simulatedFleet()
	var devs strings.Builder
	for _, d := range fleet {
		fmt.Fprintf(&devs, "  - {serial: %s, site: %s, name: %q, team: %s}\n", d.serial, d.site, d.name, d.team)
	}
	policyFile := writePolicy(t, fmt.Sprintf(`
time_zone: Europe/Berlin
thresholds: {interval: 2h, disconnected_after: 2, raise_after: 1, clear_after: 1, slow_latency: 800ms}
reports: {times: []}
alerts: {group_wait: 200ms}
devices:
%steams:
  facilities: {channels: [hooks], alerts: [all], own_devices_only: true}
  plant-it: {channels: [hooks], alerts: [all], own_devices_only: true}
channels:
  hooks: {type: webhook, url: %s, secret: %s}
`, devs.String(), hooks.URL, testSecret))

	// A week of heartbeats, published before healthwatch starts: it reads
	// them as a backlog, the way it would after an outage.
	const perSubject = "200"
	provision(t, ns, "--stream-health-per-subject", perSubject)
	f := newFleetSim(t, ns)
	now := time.Now()
	start := now.Add(-7 * 24 * time.Hour)
	wantActive := map[string]bool{}
	for i, d := range fleet {
		if d.final == health.NeverSeen {
			continue
		}
		if d.final != health.Online {
			wantActive[d.serial+" "+string(d.final)+" raised"] = true
		}
		for k := 0; k < 84; k++ {
			at := start.Add(time.Duration(k)*2*time.Hour + time.Duration(i)*time.Minute)
			if at.After(now.Add(-time.Minute)) {
				break
			}
			s := good
			last := now.Sub(at) < 7*time.Hour
			switch {
			case d.outageDaysAgo > 0 && at.After(now.Add(-time.Duration(d.outageDaysAgo)*24*time.Hour)) && at.Before(now.Add(-time.Duration(d.outageDaysAgo)*24*time.Hour+10*time.Hour)):
				s = session{reachable: false, class: proto.ErrorClassTimeout}
			case !last:
			case d.final == health.Slow:
				s.latencyMS = 1500
			case d.final == health.Disconnected:
				s = session{reachable: false, class: proto.ErrorClassTimeout}
			case d.final == health.Unauthorized:
				s = session{reachable: true, class: proto.ErrorClassUnauthorized}
			case d.final == health.StorageFull:
				s.used = 0.95
			case d.final == health.ClockDrift:
				s.offset = 5 * time.Minute
			}
			f.publish(d.serial, d.site, at, s)
		}
	}
	r := startReplica(t, "replica", ns, "--policy", policyFile, "--evaluate-every", "100ms", "--stream-health-per-subject", perSubject, "--page-refresh", "30s")

	servicetest.WaitFor(t, "every simulated device in its final state", 30*time.Second, func() (bool, string) {
		got, err := deviceStates(t, r.Addr)
		if err != nil {
			return false, err.Error()
		}
		for _, d := range fleet {
			if got[d.serial].State != d.final {
				return false, fmt.Sprintf("%s is %q, want %q", d.serial, got[d.serial].State, d.final)
			}
		}
		return len(got) == len(fleet), fmt.Sprintf("%d devices", len(got))
	})

	url := "http://" + r.Addr + "/"
	dom := string(headless(t, bin, "--window-size=1400,2000", "--virtual-time-budget=10000", "--dump-dom", url))

	// Every device, in its state, with two timelines.
	articles := regexp.MustCompile(`(?s)<article class="device" id="dev-([^"]+)" data-device="[^"]+" data-state="([^"]+)">(.*?)</article>`).FindAllStringSubmatch(dom, -1)
	if len(articles) != len(fleet) {
		t.Fatalf("the browser shows %d devices, want %d", len(articles), len(fleet))
	}
	byID := map[string][]string{}
	for _, a := range articles {
		byID[a[1]] = a
	}
	timeline := regexp.MustCompile(`(?s)<svg class="timeline" data-window="(24h|7d)"[^>]*>(.*?)</svg>`)
	for _, d := range fleet {
		a, ok := byID[d.serial]
		if !ok {
			t.Errorf("%s is missing from the page", d.serial)
			continue
		}
		if a[2] != string(d.final) {
			t.Errorf("%s shows state %s, want %s", d.serial, a[2], d.final)
		}
		tls := timeline.FindAllStringSubmatch(a[3], -1)
		if len(tls) != 2 || tls[0][1] != "24h" || tls[1][1] != "7d" {
			t.Errorf("%s has timelines %v, want 24h and 7d", d.serial, tls)
			continue
		}
		for _, tl := range tls {
			if !strings.Contains(tl[2], "<rect") {
				t.Errorf("%s %s timeline has no segments", d.serial, tl[1])
			}
		}
		week := tls[1][2]
		if d.outageDaysAgo > 0 && !strings.Contains(week, `data-state="disconnected"`) {
			t.Errorf("%s had an outage %d days ago, not on its 7-day timeline:\n%s", d.serial, d.outageDaysAgo, week)
		}
		if d.final == health.NeverSeen && strings.Contains(week, `data-state="online"`) {
			t.Errorf("%s was never seen but its timeline shows online", d.serial)
		}
	}
	// The page's own script counted the timelines the browser laid out
	// with a visible size.
	if want := fmt.Sprintf(`data-timelines-rendered="%d"`, 2*len(fleet)); !strings.Contains(dom, want) {
		m := regexp.MustCompile(`data-timelines-rendered="\d+"`).FindString(dom)
		t.Errorf("the browser laid out %q, want %s", m, want)
	}
	for _, site := range []string{"hq", "plant", "depot"} {
		if !strings.Contains(dom, `<section class="site" data-site="`+site+`">`) {
			t.Errorf("no section for site %s", site)
		}
	}

	// A filter, in the browser.
	filtered := string(headless(t, bin, "--virtual-time-budget=5000", "--dump-dom", url+"?state=disconnected&site=plant"))
	got := regexp.MustCompile(`data-device="([^"]+)" data-state="([^"]+)"`).FindAllStringSubmatch(filtered, -1)
	var want []string
	for _, d := range fleet {
		if d.site == "plant" && d.final == health.Disconnected {
			want = append(want, d.serial)
		}
	}
	if len(got) != len(want) {
		t.Errorf("filtered page shows %v, want %v", got, want)
	}
	for _, g := range got {
		if g[2] != string(health.Disconnected) {
			t.Errorf("filtered page shows %s in state %s", g[1], g[2])
		}
	}

	// A screenshot for people to look at.
	shot := filepath.Join(artifacts(t), "healthwatch-status-page.png")
	headless(t, bin, "--window-size=1400,2400", "--virtual-time-budget=5000", "--screenshot="+shot, url)
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if colors := distinctColors(img); img.Bounds().Dx() < 1000 || colors < 8 {
		t.Errorf("screenshot %v with %d colours does not look like the page", img.Bounds(), colors)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(b))

	// Catching up over a week of history alerted what is wrong now, once
	// per condition, and none of the past outages.
	servicetest.WaitFor(t, "alerts for the active conditions", 10*time.Second, func() (bool, string) {
		return len(hooks.events()) >= len(wantActive), fmt.Sprint(hooks.events())
	})
	time.Sleep(500 * time.Millisecond)
	for _, e := range hooks.events() {
		if !wantActive[e] {
			t.Errorf("alert %q is not about a condition active now", e)
		}
	}
	if n := len(hooks.events()); n != len(wantActive) {
		t.Errorf("%d alerts for %d active conditions: %v", n, len(wantActive), hooks.events())
	}

	// The JSON twin agrees.
	var api page.APIResponse
	if err := getJSON(t, url+"api/devices?team=facilities", &api); err != nil {
		t.Fatal(err)
	}
	if api.Total != 10 {
		t.Errorf("/api/devices?team=facilities has %d devices, want the 10 at hq", api.Total)
	}
}

// distinctColors counts the colours on a grid of sample points.
func distinctColors(img image.Image) int {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 12, g >> 12, bl >> 12}] = true
		}
	}
	return len(seen)
}
