package backfill

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/apisim"
	"github.com/punchflow/punchflow/services/collector/internal/jstest"
)

func TestCommandBackfillsResumesAndPrintsPlan(t *testing.T) {
	env := jstest.Start(t, false)
	sim, err := apisim.Start(apisim.Config{Seed: 4, From: from, To: from.AddDate(0, 0, 31), Records: 620}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	file := filepath.Join(t.TempDir(), "sources.yaml")
	yaml := "defaults: {chunk_days: 7, mode: sequential}\napi:\n" +
		apisim.SourceYAML("a", sim.URL(), "page", apisim.Orders, 50, "type: bearer\ntoken_env: SIM_TOKEN") +
		apisim.SourceYAML("b", sim.URL(), "link", apisim.Tickets, 40, "") +
		apisim.SourceYAML("c", sim.URL(), "cursor", apisim.Payments, 40, "")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	env2 := map[string]string{"PUNCHFLOW_NATS_URL": env.URL, "SIM_TOKEN": "anything"}
	getenv := func(k string) string { return env2[k] }
	run := func(args ...string) (string, string, error) {
		var out, errb strings.Builder
		err := Command(context.Background(), append([]string{"--sources-file", file}, args...), getenv, &out, &errb)
		return out.String(), errb.String(), err
	}

	out, stderr, err := run("--from", "2025-08-01", "--to", "2025-08-31", "--sources", "a,b", "--chunk-days", "a:3,b:5",
		"--mode", "a:parallel,b:sequential", "--workers", "4", "--progress", "5ms")
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, stderr)
	}
	for _, want := range []string{
		"backfill 2025-08-01..2025-08-31 (UTC) of 2 source(s)",
		"11/11 windows 620 records", "7/7 windows 620 records", "done",
		"a 11 0 11 0 620 0 0", "b 7 0 7 0 620 0 0", "total 18 0 18 0 1,240 0 0",
	} {
		if !strings.Contains(squeeze(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := env.Count(t, "RAW", ""); n != 1240 {
		t.Fatalf("RAW holds %d, want 1240", n)
	}

	// The same command again: every window is skipped.
	out, _, err = run("--from", "2025-08-01", "--to", "2025-08-31", "--sources", "a,b", "--chunk-days", "a:3,b:5", "--progress", "0")
	if err != nil || !strings.Contains(squeeze(out), "total 18 18 0 0 0 0 0 0") {
		t.Fatalf("rerun %v:\n%s", err, out)
	}
	// A dry run shows the plan and what is done.
	out, _, err = run("--from", "2025-08-30", "--to", "2025-09-02", "--sources", "a", "--chunk-days", "3", "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a (api, sequential): 2 windows", "2025-08-30..2025-09-01  to do", "2025-09-02..2025-09-02  to do"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = run("--from", "2025-08-01", "--to", "2025-08-03", "--sources", "a", "--chunk-days", "3", "--dry-run")
	if !strings.Contains(out, "2025-08-01..2025-08-03  done (") {
		t.Errorf("dry run does not show the done window:\n%s", out)
	}
	if n := env.Count(t, "RAW", ""); n != 1240 {
		t.Fatalf("RAW holds %d after the rerun, want 1240", n)
	}
}

func TestCommandRejectsBadSettings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.yaml")
	yaml := "api:\n" + apisim.SourceYAML("a", "http://127.0.0.1:1", "page", apisim.Orders, 50, "")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--from", "2025-08-01", "--to", "2025-08-31"}, "--sources-file is required"},
		{[]string{"--sources-file", file}, "--from and --to are required"},
		{[]string{"--sources-file", file, "--from", "2025-08-01", "--to", "2025-08-31", "--sources", "zz"}, `unknown source(s) [zz]`},
		{[]string{"--sources-file", file, "--from", "2025-08-01", "--to", "2025-08-31", "--chunk-days", "a:40"}, "chunk days 40 must be from 1 to 30"},
		{[]string{"--sources-file", file, "--from", "2025-08-01", "--to", "2025-08-31", "--mode", "fast"}, `"fast" must be parallel or sequential`},
		{[]string{"--sources-file", file, "--from", "2025-08-01", "--to", "2025-08-31", "--mode", "b:parallel"}, `name "b", which is not a source`},
		{[]string{"--sources-file", file, "--from", "2025-08-31", "--to", "2025-08-01"}, "is before from"},
	}
	for _, tc := range cases {
		var out, errb strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := Command(ctx, tc.args, func(string) string { return "" }, &out, &errb)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

// squeeze collapses runs of spaces, so checks do not depend on alignment.
func squeeze(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}
