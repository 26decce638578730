package app

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/punchflow/punchflow/platform/servicetest"
)

func runCmd(args ...string) (string, string, error) {
	var out, errOut servicetest.Buffer
	err := Run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestRulesCommands(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "rules.yaml", appRules+`
holidays:
  us: {"12-25": Christmas}
models:
  speedface: {serial_prefixes: [SF], states: {"0": auto}}
`)
	bad := writeFile(t, dir, "bad.yaml", "default_time_zone: UTC\nsites:\n  hq:\n    time_zone: Mars/Olympus\nshifts:\n  day: {start: \"9am\", end: \"17:00\"}\n")
	ros := writeFile(t, dir, "roster.csv", "site,user_id,person_id,name,department,shift\nhq,0042,emp-1,Ada,office,\nhq,0043,emp-2,Bo,,night\n")
	goodRos := writeFile(t, dir, "good-roster.csv", "site,user_id,person_id,name,department,shift\nhq,0042,emp-1,Ada,office,day\n")
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		want    []string
	}{
		{"check a valid file", []string{"rules", "check", good}, false,
			[]string{"is valid", "rules version", "hq", "America/New_York", "day", "09:00-17:00", "grace late 5m0s", "us", "model speedface (serial prefixes SF): 0 auto",
				"orders", "3 field(s), 1 required; natural key order_id; timestamp created"}},
		{"check names every problem with its line", []string{"rules", "check", bad}, true,
			[]string{"NOT valid", "line 4: sites.hq.time_zone: \"Mars/Olympus\" is not an IANA time zone", "line 6: shifts.day.start: \"9am\" is not a time of day"}},
		{"check a roster against the rules", []string{"rules", "check", good, "--roster", ros}, true,
			[]string{`names shift "night", which the rules do not have`}},
		{"flags before the file", []string{"rules", "check", "--roster", goodRos, good}, false,
			[]string{"1 entries, all consistent"}},
		{"explain a late punch", []string{"rules", "explain", good, "--roster", ros, "--punch", `{"site":"hq","device_serial":"D1","user_id":"0042","device_time":"2026-01-14T09:12:00","state":0}`}, false,
			[]string{"1.  zone", "device clock read as America/New_York", "person emp-1 (Ada)", "sites.hq.shift → shift day", "state 0 → in",
				"12 minutes late (flag late)", `"late_minutes": 12`, `"work_date": "2026-01-14"`}},
		{"explain a face terminal punch", []string{"rules", "explain", good, "--punch", `{"site":"hq","device_serial":"SF9","user_id":"7","device_time":"2026-01-14T16:30:00","state":0}`}, false,
			[]string{"state 0 → auto (model speedface)", "decided by the shift window: out", "no roster configured"}},
		{"explain a rejected punch", []string{"rules", "explain", good, "--punch", `{"site":"hq","user_id":"7","device_time":"1999-01-14T16:30:00"}`}, true,
			[]string{"REJECTED", "too_old"}},
		{"explain with a typo in the punch", []string{"rules", "explain", good, "--punch", `{"site":"hq","user":"7","device_time":"2026-01-14T16:30:00"}`}, true, nil},
		{"explain without a punch", []string{"rules", "explain", good}, true, nil},
		{"no file", []string{"rules", "check"}, true, nil},
		{"unknown command", []string{"rules", "lint", good}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := runCmd(tt.args...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v\nstdout:\n%s\nstderr:\n%s", err, tt.wantErr, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	if _, _, err := runCmd("rules", "check", bad); !errors.Is(err, errRejected) {
		t.Errorf("an invalid rules file gives %v, want errRejected (exit status 1)", err)
	}
}

// TestServiceConfigErrors: a bad configuration stops the service before it
// connects, with a message that says what to fix.
func TestServiceConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.yaml", "sites:\n  hq: {}\n")
	tests := []struct {
		args []string
		want string
	}{
		{nil, "rules is required"},
		{[]string{"--rules", bad}, "line 2: sites.hq: time_zone is required"},
		{[]string{"--rules", bad, "--roster", "x.csv", "--roster-kv"}, "either --roster FILE or --roster-kv"},
		{[]string{"--rules", writeFile(t, dir, "ok.yaml", appRules), "--roster", writeFile(t, dir, "r.csv", "site,user\n"), "--nats-url", "nats://127.0.0.1:1", "--http-addr", "127.0.0.1:0"}, "roster"},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var out, logs servicetest.Buffer
		err := Run(ctx, tt.args, func(string) string { return "" }, &out, &logs)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Run %v: error %v, want it to mention %q", tt.args, err, tt.want)
		}
	}
}

// TestExampleRules keeps the annotated example file valid.
func TestExampleRules(t *testing.T) {
	out, _, err := runCmd("rules", "check", "../rules.example.yaml")
	if err != nil {
		t.Fatalf("rules.example.yaml: %v\n%s", err, out)
	}
	out, _, err = runCmd("rules", "explain", "../rules.example.yaml", "--punch",
		`{"site":"plant","device_serial":"P7","user_id":"7","device_time":"2026-11-03T06:20:00","state":1,"clock_offset_ms":180000}`)
	if err != nil || !strings.Contains(out, "work date 2026-11-02") || !strings.Contains(out, "corrected to 2026-11-03T06:17:00") {
		t.Fatalf("explain with the example rules: %v\n%s", err, out)
	}
}
