package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/proto"
)

// replayRun runs `transformer replay` to completion and returns its stdout.
func replayRun(t *testing.T, ns *server.Server, args ...string) (string, error) {
	t.Helper()
	var out, logs servicetest.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := append([]string{"replay", "--nats-url", ns.ClientURL(), "--js-memory", "--log-format", "json", "--progress", "50ms"}, args...)
	err := Run(ctx, all, func(string) string { return "" }, &out, &logs)
	if ctx.Err() != nil {
		t.Fatalf("replay did not finish: %v\n%s\n%s", err, out.String(), logs.String())
	}
	return out.String(), err
}

// TestReplay re-processes RAW from a point in time on a consumer of its
// own: under new rules it adds the new version of each event from then on
// and nothing before; run again it adds nothing; a subject filter narrows it;
// the consumer is gone afterwards.
func TestReplay(t *testing.T) {
	ns := natsServer(t)
	dir := t.TempDir()
	v1 := writeFile(t, dir, "v1.yaml", appRules)
	tr := start(t, ns, "--rules", v1)
	js := connect(t, ns)

	batch := func(day int) []proto.RawPunch {
		var out []proto.RawPunch
		for u := range 10 {
			site := []string{"hq", "plant"}[u%2]
			out = append(out, punchAt(site, "D1", fmt.Sprintf("%04d", u), fmt.Sprintf("2026-01-%02dT09:%02d:00", day, u), 0))
		}
		return out
	}
	publishPunches(t, js, batch(12))
	waitIdle(t, js, "transformer")
	time.Sleep(50 * time.Millisecond)
	since := time.Now().UTC()
	time.Sleep(50 * time.Millisecond)
	second := batch(13)
	publishPunches(t, js, second)
	waitIdle(t, js, "transformer")
	if evs := readStream(t, js, "CLEAN", "clean.attendance.>", 20); len(evs) != 20 {
		t.Fatalf("%d events before the replay, want 20", len(evs))
	}
	tr.stop(t) // a replay does not need the live service

	// New rules (the day shift now starts at 08:00): a new rules version.
	v2 := writeFile(t, dir, "v2.yaml", strings.Replace(appRules, `start: "09:00"`, `start: "08:00"`, 1))
	out, err := replayRun(t, ns, "--rules", v2, "--since", since.Format(time.RFC3339Nano))
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	for _, want := range []string{"replay: 10 message(s) on [raw.punch.> raw.record.>]", "replay: caught up: 10 message(s) processed (0 dead-lettered)", "10/10 (100%)"} {
		if !strings.Contains(out, want) {
			t.Errorf("replay output lacks %q:\n%s", want, out)
		}
	}
	evs := decodeEvents(t, readStream(t, js, "CLEAN", "clean.attendance.>", 30))
	if len(evs) != 30 {
		t.Fatalf("%d events after the replay, want 30", len(evs))
	}
	replayed := map[string]bool{}
	for _, p := range second {
		replayed[p.ID] = true
	}
	v1Version := evs[0].RulesVersion
	for _, ev := range evs[20:] {
		if ev.RulesVersion == v1Version || !replayed[ev.Lineage.RawID] || ev.Site == "hq" && ev.LateMinutes < 60 || !ev.Reprocessed {
			t.Errorf("replayed event %+v: want the new rules version, a punch of the second batch, at hq late against 08:00, marked reprocessed", ev)
		}
	}
	for _, ev := range evs[:20] {
		if ev.Reprocessed {
			t.Errorf("event of a punch processed once is marked reprocessed: %+v", ev)
		}
	}

	// The same replay again adds nothing: same rules, same ids. (With a
	// roster file, whose watcher must stop with the replay; the roster
	// knows nobody in the batch, so the ids stay the same.)
	rosterPath := writeFile(t, dir, "roster.csv", "site,user_id,person_id\nelsewhere,1,p1\n")
	if out, err := replayRun(t, ns, "--rules", v2, "--roster", rosterPath, "--since", since.Format(time.RFC3339Nano)); err != nil || !strings.Contains(out, "caught up: 10") {
		t.Fatalf("second replay: %v\n%s", err, out)
	}
	// Narrowed to one site, from the start, under yet other rules.
	v3 := writeFile(t, dir, "v3.yaml", appRules+"# v3\n")
	out, err = replayRun(t, ns, "--rules", v3, "--since", "2026-01-01", "--subjects", "raw.punch.plant.>")
	if err != nil || !strings.Contains(out, "caught up: 10 message(s)") {
		t.Fatalf("plant replay: %v\n%s", err, out)
	}
	si, err := js.Stream(context.Background(), "CLEAN")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := si.Info(context.Background())
	if info.State.Msgs != 40 {
		t.Errorf("CLEAN holds %d events, want 40 (20 + 10 under v2 + 10 plant punches under v3)", info.State.Msgs)
	}
	// Nothing to replay: returns at once.
	if out, err := replayRun(t, ns, "--rules", v2, "--since", time.Now().Add(time.Hour).Format(time.RFC3339)); err != nil || !strings.Contains(out, "replay: 0 message(s)") {
		t.Fatalf("empty replay: %v\n%s", err, out)
	}
	raw, _ := js.Stream(context.Background(), "RAW")
	for name := range raw.ConsumerNames(context.Background()).Name() {
		if strings.HasPrefix(name, "transformer-replay-") {
			t.Errorf("replay consumer %s left behind", name)
		}
	}

	// Bad invocations say what to fix.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--rules", v2}, "since is required"},
		{[]string{"--rules", v2, "--since", "last tuesday"}, `since "last tuesday" is not`},
		{[]string{"--rules", v2, "--since", "1h", "--subjects", "clean.>"}, `subject "clean.>" is not a RAW`},
	} {
		if _, err := replayRun(t, ns, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("replay %v: error %v, want %q", tt.args, err, tt.want)
		}
	}
}
