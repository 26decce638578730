package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/services/collector/internal/zksim"
)

// resolveArgs parses args (with the given environment and config file
// text, if any) and resolves the fleet.
func resolveArgs(t *testing.T, args []string, env map[string]string, yamlText string) ([]spec, error) {
	t.Helper()
	if yamlText != "" {
		path := filepath.Join(t.TempDir(), "fleet.yaml")
		if err := os.WriteFile(path, []byte(yamlText), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", path}, args...)
	}
	s, err := parseSettings(args, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		return nil, err
	}
	return s.resolve()
}

func TestSettingsDefaults(t *testing.T) {
	specs, err := resolveArgs(t, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 64 {
		t.Fatalf("%d devices, want 64", len(specs))
	}
	for i, want := range map[int]spec{
		0: {Index: 0, Listen: "127.0.0.1:4370", Transport: "tcp", Site: "sim", TimeZone: "UTC", Mode: "poll",
			Config: zksim.Config{Seed: 1, Users: 500, Records: 50_000, RecordSize: 40, UserSize: 72, SerialNumber: "SIM0001", Location: time.UTC}},
		63: {Index: 63, Listen: "127.0.0.1:4433", Transport: "tcp", Site: "sim", TimeZone: "UTC", Mode: "poll",
			Config: zksim.Config{Seed: 64, Users: 500, Records: 50_000, RecordSize: 40, UserSize: 72, SerialNumber: "SIM0064", Location: time.UTC}},
	} {
		if diff := cmp.Diff(want, specs[i], cmp.Comparer(sameLocation)); diff != "" {
			t.Errorf("device %d (-want +got):\n%s", i, diff)
		}
	}
}

func sameLocation(a, b *time.Location) bool { return a.String() == b.String() }

// TestSettingsSources: the command line, the same settings as a
// YAML file, and the precedence file < environment < flags.
func TestSettingsSources(t *testing.T) {
	const fileText = `
listen: 127.0.0.1:5000
devices: 3
users: 7
records: 100
udp: true
commkey: 42
rtt: 20ms
punch-rate: 2/s
layout: 16
seed: 9
`
	wantDevice := func(i int, records int) spec {
		return spec{Index: i, Listen: "127.0.0.1:" + []string{"5000", "5001", "5002"}[i], Transport: "udp", Site: "sim", TimeZone: "UTC", Mode: "poll",
			Config: zksim.Config{Seed: 9 + int64(i), Users: 7, Records: records, RecordSize: 16, UserSize: 72, CommKey: 42,
				SerialNumber: []string{"SIM0001", "SIM0002", "SIM0003"}[i], PunchInterval: 500 * time.Millisecond, Location: time.UTC,
				Faults: zksim.Faults{Latency: 20 * time.Millisecond}}}
	}
	flags := strings.Fields("--listen 127.0.0.1:5000 --devices 3 --users 7 --records 100 --udp --commkey 42 --rtt 20ms --punch-rate 2/s --layout 16 --seed 9")
	for _, tt := range []struct {
		name    string
		args    []string
		env     map[string]string
		file    string
		records int
	}{
		{"flags", flags, nil, "", 100},
		{"file", nil, nil, fileText, 100},
		{"env over file", nil, map[string]string{"ZKSIM_RECORDS": "20"}, fileText, 20},
		{"flag over env and file", []string{"--records", "30"}, map[string]string{"ZKSIM_RECORDS": "20"}, fileText, 30},
		{"env only", nil, map[string]string{"ZKSIM_LISTEN": "127.0.0.1:5000", "ZKSIM_DEVICES": "3", "ZKSIM_USERS": "7",
			"ZKSIM_RECORDS": "100", "ZKSIM_UDP": "true", "ZKSIM_COMMKEY": "42", "ZKSIM_RTT": "20ms", "ZKSIM_PUNCH_RATE": "2/s",
			"ZKSIM_LAYOUT": "16", "ZKSIM_SEED": "9"}, "", 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := resolveArgs(t, tt.args, tt.env, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			want := []spec{wantDevice(0, tt.records), wantDevice(1, tt.records), wantDevice(2, tt.records)}
			if diff := cmp.Diff(want, specs, cmp.Comparer(sameLocation)); diff != "" {
				t.Errorf("devices (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("config from the environment", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "fleet.yaml")
		if err := os.WriteFile(path, []byte(fileText), 0o644); err != nil {
			t.Fatal(err)
		}
		specs, err := resolveArgs(t, nil, map[string]string{"ZKSIM_CONFIG": path}, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(specs) != 3 || specs[2].Config.Records != 100 {
			t.Errorf("ZKSIM_CONFIG ignored: %d devices, %d records", len(specs), specs[len(specs)-1].Config.Records)
		}
	})
}

// TestSettingsOverrides: per-device overrides change only what they name,
// merge fault knobs with the fleet's, keep the other devices' settings,
// and take precedence over the flags.
func TestSettingsOverrides(t *testing.T) {
	const fileText = `
devices: 4
users: 20
records: 300
time-zone: Europe/Berlin
faults:
  drop-rate: 0.1
  clock-skew: 90s
overrides:
  - index: 1
    serial: GATE-B
    records: 10
    seed: 99
    faults:
      reset-on-chunk: 2
      one-session: refuse
  - index: 3
    commkey: 7
    layout: 49
    mode: live
    site: annex
    faults:
      corrupt-records: [0, 5]
      bandwidth: 100000
      start-disabled: true
`
	specs, err := resolveArgs(t, []string{"--listen", "127.0.0.1:7000", "--records", "400"}, nil, fileText)
	if err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	fleetFaults := zksim.Faults{DropRate: 0.1, ClockSkew: 90 * time.Second}
	base := func(i int) spec {
		return spec{Index: i, Listen: "127.0.0.1:700" + string(rune('0'+i)), Transport: "tcp", Site: "sim", TimeZone: "Europe/Berlin", Mode: "poll",
			Config: zksim.Config{Seed: 1 + int64(i), Users: 20, Records: 400, RecordSize: 40, UserSize: 72,
				SerialNumber: "SIM000" + string(rune('1'+i)), Location: berlin, Faults: fleetFaults}}
	}
	want := []spec{base(0), base(1), base(2), base(3)}
	want[1].Config.SerialNumber, want[1].Config.Records, want[1].Config.Seed = "GATE-B", 10, 99
	want[1].Config.Faults.ResetOnChunk, want[1].Config.Faults.OneSession = 2, zksim.SessionsRefuse
	want[3].Config.CommKey, want[3].Config.RecordSize, want[3].Mode, want[3].Site = 7, 49, "live", "annex"
	want[3].Config.Faults.CorruptRecords = []int{0, 5}
	want[3].Config.Faults.Bandwidth, want[3].Config.Faults.StartDisabled = 100000, true
	if diff := cmp.Diff(want, specs, cmp.Comparer(sameLocation)); diff != "" {
		t.Errorf("devices (-want +got):\n%s", diff)
	}
}

// TestSettingsErrors: bad settings fail before anything starts, with an
// error that names the setting (and the device, for an override) and says
// what is wanted.
func TestSettingsErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		file string
		want []string // substrings of the error
	}{
		{"no devices", []string{"--devices", "0"}, nil, "", []string{"devices 0: want at least 1"}},
		{"listen without port", []string{"--listen", "localhost"}, nil, "", []string{`listen "localhost": want HOST:PORT`}},
		{"ports run out", []string{"--listen", "127.0.0.1:65500"}, nil, "", []string{"port 65563", "lower the port or the number of devices"}},
		{"layout", []string{"--layout", "20"}, nil, "", []string{"layout 20: want 8, 16, 40 or more"}},
		{"user layout", []string{"--user-layout", "30"}, nil, "", []string{"user-layout 30: want 28 or 72"}},
		{"event size", []string{"--event-size", "40"}, nil, "", []string{"event-size 40: want one of"}},
		{"punch rate without unit", []string{"--punch-rate", "2"}, nil, "", []string{`invalid value "2" for flag -punch-rate`, "want a rate such as 2/s"}},
		{"comm key", []string{"--commkey", "abc"}, nil, "", []string{"-commkey", "want a decimal number"}},
		{"time zone", []string{"--time-zone", "Mars/Olympus"}, nil, "", []string{`time-zone "Mars/Olympus": want an IANA zone`}},
		{"mode", []string{"--mode", "push"}, nil, "", []string{`mode "push": want poll or live`}},
		{"records over capacity", []string{"--records", "200000"}, nil, "", []string{"records 200000: want at most record-capacity 100000"}},
		{"start date", []string{"--start", "2024-13-01"}, nil, "", []string{`start "2024-13-01": want a date YYYY-MM-DD`}},
		{"unknown flag", []string{"--recods", "5"}, nil, "", []string{"flag provided but not defined: -recods"}},
		{"argument", []string{"fleet.yaml"}, nil, "", []string{`unexpected argument "fleet.yaml"`, "only flags"}},
		{"bad environment", nil, map[string]string{"ZKSIM_DEVICES": "many"}, "", []string{`environment ZKSIM_DEVICES="many"`}},
		{"missing config file", []string{"--config", filepath.Join(os.TempDir(), "no-such-zksim-fleet.yaml")}, nil, "", []string{"fleet config: open"}},
		{"unknown key", nil, nil, "recods: 5\n", []string{"line 1: field recods not found", "keys are the flag names"}},
		{"serial for all", nil, nil, "serial: X1\n", []string{`serial "X1": serials are per device`}},
		{"override without index", nil, nil, "overrides:\n  - records: 5\n", []string{"overrides[0]: index is required"}},
		{"override index out of range", nil, nil, "devices: 3\noverrides:\n  - index: 3\n", []string{"overrides[0]: index 3: the fleet has 3 devices, indices 0–2"}},
		{"override twice", nil, nil, "overrides:\n  - index: 1\n  - index: 1\n", []string{"overrides[1]: index 1 is already overridden by overrides[0]"}},
		{"override unknown fault", nil, nil, "overrides:\n  - index: 1\n    faults: {reset-on-chunks: 2}\n", []string{"line 3: field reset-on-chunks not found"}},
		{"override bad layout", nil, nil, "overrides:\n  - index: 2\n    layout: 20\n", []string{"overrides[0] (device 2): layout 20"}},
		{"duplicate serial", nil, nil, "overrides:\n  - index: 1\n    serial: SIM0001\n", []string{`overrides[0] (device 1): serial "SIM0001" is also device 0's`}},
		{"one-session policy", nil, nil, "faults: {one-session: sometimes}\n", []string{`faults.one-session "sometimes": want unlimited, refuse or block`}},
		{"corrupt record index", nil, nil, "records: 100\nfaults: {corrupt-records: [500]}\n", []string{"faults.corrupt-records: index 500 outside the log's 100 records"}},
		{"drop rate", nil, nil, "faults: {drop-rate: 1.5}\n", []string{"faults.drop-rate 1.5: want a probability"}},
		{"negative fault count", nil, nil, "faults: {garbage-bytes: -3}\n", []string{"faults.garbage-bytes -3: want 0 or more"}},
		{"stall without duration", nil, nil, "faults: {stall-on-chunk: 2}\n", []string{"faults.stall-on-chunk 2: set faults.stall"}},
		{"punch rate in file", nil, nil, "punch-rate: fast\n", []string{`punch rate "fast": want a rate such as 2/s`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolveArgs(t, tt.args, tt.env, tt.file)
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestRate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"2/s", 500 * time.Millisecond},
		{"30/m", 2 * time.Second},
		{"30/min", 2 * time.Second},
		{"120/h", 30 * time.Second},
		{"0.5/sec", 2 * time.Second},
		{"0", 0},
		{"", 0},
	} {
		var r rate
		if err := r.Set(tt.in); err != nil {
			t.Errorf("Set(%q): %v", tt.in, err)
			continue
		}
		if got := r.interval(); got != tt.want {
			t.Errorf("Set(%q): interval %v, want %v", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"2", "2/d", "-1/s", "x/s", "5000/s", "/s"} {
		var r rate
		if err := r.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}
