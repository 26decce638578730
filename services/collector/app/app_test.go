package app

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/natstest"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/zksim"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(good, []byte("devices: [{serial: A, address: 10.0.0.1, site: hq, comm_key_env: KEY_A}]"), 0o644); err != nil {
		t.Fatal(err)
	}
	inline := filepath.Join(dir, "inline.yaml")
	if err := os.WriteFile(inline, []byte("devices: [{serial: A, address: 10.0.0.1, site: hq, comm_key: 1}]"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KEY_A": "4711"}
	srcFile := filepath.Join(dir, "sources.yaml")
	if err := os.WriteFile(srcFile, []byte("api: [{name: a, base_url: 'http://h', key_fields: [id]}]"), 0o644); err != nil {
		t.Fatal(err)
	}
	badSrc := filepath.Join(dir, "bad-sources.yaml")
	if err := os.WriteFile(badSrc, []byte("api: [{name: a, base_url: 'http://h', key_fields: [id], pagination: {style: pages}}]"), 0o644); err != nil {
		t.Fatal(err)
	}
	admsFile := filepath.Join(dir, "adms.yaml")
	if err := os.WriteFile(admsFile, []byte("devices: [{serial: P1, site: hq}]"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string // "" = valid
	}{
		{"no source", nil, nil, "no source: give --csv-dir"},
		{"csv only", []string{"--csv-dir", dir}, nil, ""},
		{"fleet only", []string{"--fleet", good}, env, ""},
		{"fleet from the environment", nil, map[string]string{"PUNCHFLOW_FLEET": good, "KEY_A": "4711"}, ""},
		{"both", []string{"--csv-dir", dir, "--fleet", good}, env, ""},
		{"fleet key missing", []string{"--fleet", good}, nil, "KEY_A is not set"},
		{"inline comm key", []string{"--fleet", inline}, nil, "comm_key is not allowed"},
		{"missing fleet file", []string{"--fleet", filepath.Join(dir, "nope.yaml")}, nil, "fleet file"},
		{"bad fleet flags", []string{"--fleet", good, "--fleet-concurrency", "0", "--fleet-lease", "100ms"}, env, "fleet-concurrency must be at least 1"},
		{"csv settings checked only with csv", []string{"--fleet", good, "--csv-poll", "0s"}, env, ""},
		{"csv settings checked with csv", []string{"--csv-dir", dir, "--csv-poll", "0s"}, nil, "csv-poll must be positive"},
		{"sources file only", []string{"--sources-file", srcFile}, nil, ""},
		{"bad sources file", []string{"--sources-file", badSrc}, nil, `pagination style "pages"`},
		{"adms only", []string{"--adms-addr", ":0", "--adms-devices", admsFile}, nil, ""},
		{"adms without devices", []string{"--adms-addr", ":0"}, nil, "adms-addr needs --adms-devices"},
		{"adms devices without addr", []string{"--csv-dir", dir, "--adms-devices", admsFile}, nil, "adms-devices is set but adms-addr is not"},
		{"adms with once", []string{"--adms-addr", ":0", "--adms-devices", admsFile, "--once"}, nil, "cannot be used with --once"},
		{"adms devices file missing", []string{"--adms-addr", ":0", "--adms-devices", filepath.Join(dir, "nope.yaml")}, nil, "adms devices file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			fs := flag.NewFlagSet("collector", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg := Config{getenv: getenv}
			cfg.register(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.env {
				if f := fs.Lookup(strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "PUNCHFLOW_"), "_", "-"))); f != nil && strings.HasPrefix(k, "PUNCHFLOW_") {
					_ = f.Value.Set(v)
				}
			}
			err := cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate = %v, want valid", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want an error saying %q", err, tt.wantErr)
			}
			if tt.wantErr == "" && cfg.Fleet.File != "" && len(cfg.devices) != 1 {
				t.Errorf("fleet devices %d, want 1", len(cfg.devices))
			}
		})
	}
}

// TestProbe runs "collector probe" against devices of both layout families
// and checks what it prints; a missing or wrong comm key is a clear error.
func TestProbe(t *testing.T) {
	tests := []struct {
		name string
		cfg  zksim.Config
		args []string
		want []string // substrings of the output, or regular expressions in /…/
	}{
		{"tft device with comm key", zksim.Config{Seed: 51, Records: 1500, CommKey: 4711, Faults: zksim.Faults{ClockSkew: -2 * time.Minute}},
			[]string{"--commkey", "4711"},
			[]string{"SIM0051", "ZEM760_TFT", "Ver 6.60", "20 of 5000, layout 72-byte records", "1500 of 100000 (1.5% used), layout 40-byte records",
				`/offset -1(19|20)\.\d s against this machine in UTC/`, "1500 records in", "0 did not decode", "comm key given"}},
		{"old device over udp", zksim.Config{Seed: 52, Records: 300, RecordSize: 16, UserSize: 28},
			[]string{"--udp"},
			[]string{"SIM0052", "over udp", "layout 28-byte records", "layout 16-byte records", `/offset [+-]0\.\d s/`, "comm key not required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := startSim(t, tt.cfg)
			var out, errOut strings.Builder
			args := append([]string{"probe", "--device", dev.Addr(), "--time-zone", "UTC"}, tt.args...)
			if err := Run(context.Background(), args, func(string) string { return "" }, &out, &errOut); err != nil {
				t.Fatalf("probe: %v\n%s", err, errOut.String())
			}
			for _, w := range tt.want {
				if re, ok := strings.CutPrefix(w, "/"); ok {
					if !regexp.MustCompile(strings.TrimSuffix(re, "/")).MatchString(out.String()) {
						t.Errorf("output does not match %s:\n%s", w, out.String())
					}
					continue
				}
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if !dev.Enabled() {
				t.Error("probe left the device disabled")
			}
		})
	}
	dev := startSim(t, zksim.Config{Seed: 53, CommKey: 4711})
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "wants a comm key: give --commkey"},
		{[]string{"--commkey", "4712"}, "refused the comm key"},
		{[]string{"--commkey", "secret"}, "decimal number"},
		{[]string{"--commkey-env", "NOPE"}, "NOPE is not set"},
	} {
		err := Run(context.Background(), append([]string{"probe", "--device", dev.Addr()}, tt.args...), func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("probe %v = %v, want an error saying %q", tt.args, err, tt.want)
		}
	}
	if err := Run(context.Background(), []string{"probe"}, func(string) string { return "" }, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--device") {
		t.Errorf("probe without --device = %v", err)
	}
}

// TestOnceBothSources: with --once the collector reads the CSV folder and
// every device of the fleet once and exits; the CSV source keeps working
// next to the fleet.
func TestOnceBothSources(t *testing.T) {
	ns := natstest.Run(t)
	dir := t.TempDir()
	csv := "site,device_serial,user_id,device_time,state,verify_mode\nhq,CSV1,42,2026-03-02 08:00:00,0,1\n"
	if err := os.WriteFile(filepath.Join(dir, "a.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	devs := []*zksim.Device{startSim(t, zksim.Config{Seed: 54, Records: 40}), startSim(t, zksim.Config{Seed: 55, Records: 60})}
	r := startCollector(t, "once", "--nats-url", ns.ClientURL(), "--js-memory", "--once", "--csv-dir", dir, "--csv-settle", "0s", "--fleet", writeFleet(t, devs, ""))
	if err := r.Wait(30 * time.Second); err != nil {
		t.Fatalf("collector --once: %v\n%s", err, r.Logs.String())
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	counts := streamSubjects(t, js, "RAW", "raw.>")
	want := map[string]uint64{"raw.punch.hq.CSV1": 1, "raw.punch.hq.SIM0054": 40, "raw.punch.hq.SIM0055": 60}
	for subj, n := range want {
		if counts[subj] != n {
			t.Errorf("%s: %d messages, want %d (all: %v)", subj, counts[subj], n, counts)
		}
	}
	hb := streamSubjects(t, js, "HEALTH", "health.>")
	for _, subj := range []string{"health.source.csv", "health.device.SIM0054", "health.device.SIM0055"} {
		if hb[subj] != 1 {
			t.Errorf("%s: %d heartbeats, want 1 (all: %v)", subj, hb[subj], hb)
		}
	}
}

// streamSubjects counts the messages of stream per subject.
func streamSubjects(t *testing.T, js jetstream.JetStream, stream, filter string) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects
}

// heartbeatsAfter returns, per device, the heartbeats observed after since.
func heartbeatsAfter(t *testing.T, js jetstream.JetStream, since time.Time) map[string][]proto.Heartbeat {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, "HEALTH", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"health.device.>"}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]proto.Heartbeat{}
	for read := uint64(0); read < info.NumPending; {
		b, err := c.Fetch(int(min(info.NumPending-read, 500)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range b.Messages() {
			n++
			hb, err := proto.Decode[proto.Heartbeat](m.Data())
			if err != nil {
				t.Fatal(err)
			}
			if hb.ObservedAt.After(since) {
				out[hb.Source] = append(out[hb.Source], hb)
			}
		}
		if n == 0 {
			t.Fatalf("heartbeats: read %d of %d: %v", read, info.NumPending, b.Error())
		}
		read += uint64(n)
	}
	return out
}
