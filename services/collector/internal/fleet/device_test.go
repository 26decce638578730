package fleet

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "gate.key"), []byte("424242\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KEY_HQ": "123456", "KEY_BAD": "12ab"}
	getenv := func(k string) string { return env[k] }
	berlin, _ := time.LoadLocation("Europe/Berlin")
	tests := []struct {
		name    string
		yaml    string
		want    []Device
		wantErr []string // substrings of the error, all of them
	}{
		{
			name: "defaults and overrides",
			yaml: `
defaults:
  site: hq
  time_zone: Europe/Berlin
  poll_interval: 2m
devices:
  - serial: A1
    address: 10.0.0.1
    comm_key_env: KEY_HQ
  - serial: B2
    address: gate.example
    port: 5005
    transport: UDP
    comm_key_file: gate.key
    site: plant
    mode: live
    clear_after_read: true
    timeout: 3s
`,
			want: []Device{
				{Serial: "A1", Host: "10.0.0.1", Port: 4370, CommKey: NewCommKey(123456, "env KEY_HQ"), Site: "hq", TimeZone: "Europe/Berlin", Location: berlin,
					PollInterval: 2 * time.Minute, Mode: ModePoll},
				{Serial: "B2", Host: "gate.example", Port: 5005, UDP: true, CommKey: NewCommKey(424242, "file "+filepath.Join(dir, "gate.key")), Site: "plant",
					TimeZone: "Europe/Berlin", Location: berlin, PollInterval: 2 * time.Minute, Mode: ModeLive, ClearAfterRead: true, Timeout: 3 * time.Second},
			},
		},
		{
			name: "minimal device",
			yaml: "devices: [{serial: X, address: 127.0.0.1, site: s}]",
			want: []Device{{Serial: "X", Host: "127.0.0.1", Port: 4370, Site: "s", Location: time.UTC, PollInterval: DefaultPollInterval, Mode: ModePoll}},
		},
		{name: "no devices", yaml: "defaults: {site: hq}", wantErr: []string{"no devices"}},
		{name: "unknown key", yaml: "devices: [{serial: X, address: h, site: s, pol_interval: 1m}]", wantErr: []string{"pol_interval"}},
		{name: "inline comm key", yaml: "devices: [{serial: X, address: h, site: s, comm_key: 1234}]", wantErr: []string{"comm_key is not allowed", "comm_key_env"}},
		{
			name: "every problem reported",
			yaml: `
devices:
  - address: h
    site: s
  - serial: P
    address: h:4370
    site: s
  - serial: Q
    address: h
    port: 70000
    transport: sctp
    mode: push
    time_zone: Mars/Olympus
    poll_interval: 1ms
  - serial: R
    address: h
    site: s
    comm_key_env: KEY_MISSING
  - serial: S
    address: h
    site: s
    comm_key_env: KEY_BAD
  - serial: T
    address: h
    site: s
    comm_key_env: KEY_HQ
    comm_key_file: gate.key
  - serial: U
    address: h
    site: s
  - serial: U
    address: h2
    site: s
`,
			wantErr: []string{
				"device 1 (without serial): serial is required",
				"device 2 (P): address must not include the port",
				"device 3 (Q): port 70000", `transport "sctp"`, `mode "push"`, `time_zone "Mars/Olympus"`, "poll_interval 1ms", "site is required",
				"device 4 (R): comm_key_env: environment variable KEY_MISSING is not set",
				"device 5 (S): comm_key_env KEY_BAD: a comm key is a decimal number",
				"device 6 (T): comm_key_env and comm_key_file are alternatives",
				"device 8 (U): serial listed twice",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml), dir, getenv)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Parse = %+v, want an error", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error does not say %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(CommKey{}), cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() })); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCommKeyNeverShown: logs and formatted values mask the key.
func TestCommKeyNeverShown(t *testing.T) {
	d := Device{Serial: "A1", Host: "h", Port: 4370, Site: "hq", Mode: ModePoll, CommKey: NewCommKey(987654, "env KEY")}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("device", "device", &d, "key", d.CommKey)
	b.WriteString(fmt.Sprintf("%v %+v %s", d.CommKey, d.CommKey, d.CommKey))
	if out := b.String(); strings.Contains(out, "987654") || !strings.Contains(out, "*** (from env KEY)") {
		t.Errorf("comm key visible or not masked:\n%s", out)
	}
}

func TestLoadFile(t *testing.T) {
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml"), os.Getenv); err == nil || !strings.Contains(err.Error(), "fleet file") {
		t.Errorf("LoadFile of a missing file = %v, want an error naming the fleet file", err)
	}
}
