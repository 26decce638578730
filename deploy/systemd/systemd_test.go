// Package systemd holds the units and environment files of a single-server
// punchflow site, and the test that checks them against the services.
package systemd

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/punchflow/punchflow/deploy/internal/svctest"
	"github.com/punchflow/punchflow/platform/config"
)

// unit is a parsed unit file: section → key → values in order.
type unit map[string]map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: not a setting: %q", path, line)
			}
			u[section][k] = append(u[section][k], strings.Join(strings.Fields(v), " "))
		}
	}
	return u
}

func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// readEnv reads an EnvironmentFile.
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not a variable: %q", path, line)
		}
		env[k] = v
	}
	return env
}

// TestServiceUnits checks each service's unit: the binary, an unprivileged
// user, both environment files, a stop timeout longer than the drain, the
// hardening, and its order after NATS and the provisioning.
func TestServiceUnits(t *testing.T) {
	for _, svc := range svctest.Services {
		t.Run(svc.Name, func(t *testing.T) {
			u := readUnit(t, "punchflow-"+svc.Name+".service")
			if got := u.get("Service", "ExecStart"); got != "/usr/local/bin/"+svc.Name {
				t.Errorf("ExecStart = %q", got)
			}
			if user := u.get("Service", "User"); user == "" || user == "root" {
				t.Errorf("User = %q: run as an unprivileged user", user)
			}
			envs := u["Service"]["EnvironmentFile"]
			if !slices.Equal(envs, []string{"/etc/punchflow/punchflow.env", "-/etc/punchflow/" + svc.Name + ".env"}) {
				t.Errorf("EnvironmentFile = %v", envs)
			}
			stop, err := time.ParseDuration(u.get("Service", "TimeoutStopSec"))
			if err != nil || stop <= 20*time.Second {
				t.Errorf("TimeoutStopSec %q must exceed the 20s drain (%v)", u.get("Service", "TimeoutStopSec"), err)
			}
			for k, want := range map[string]string{"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes", "CapabilityBoundingSet": "", "KillSignal": "SIGTERM", "Restart": "on-failure"} {
				if _, set := u["Service"][k]; !set || u.get("Service", k) != want {
					t.Errorf("%s = %q, want %q", k, u.get("Service", k), want)
				}
			}
			after := u.get("Unit", "After")
			for _, dep := range []string{"punchflow-nats.service", "punchflow-provision.service"} {
				if !strings.Contains(after, dep) {
					t.Errorf("After= lacks %s", dep)
				}
			}
			if u.get("Install", "WantedBy") != "multi-user.target" {
				t.Errorf("WantedBy = %q", u.get("Install", "WantedBy"))
			}
		})
	}
}

// TestEnvironmentFiles starts each service with the example environment
// (the shared file, then its own) and --version: every PUNCHFLOW_ variable
// must name one of its flags and every value must parse, secrets files
// included.
func TestEnvironmentFiles(t *testing.T) {
	shared := readEnv(t, "punchflow.env.example")
	for _, svc := range svctest.Services {
		t.Run(svc.Name, func(t *testing.T) {
			flags, err := svctest.Flags(svc)
			if err != nil {
				t.Fatal(err)
			}
			env := map[string]string{}
			for k, v := range shared {
				env[k] = v
			}
			for k, v := range readEnv(t, svc.Name+".env.example") {
				env[k] = v
			}
			for k, v := range env {
				ok := false
				for _, f := range flags {
					if k == config.EnvName(f) {
						ok = true
					}
					if k == config.EnvName(f)+"_FILE" {
						ok = true
						// Parse reads the secret: give it one.
						p := filepath.Join(t.TempDir(), filepath.Base(v))
						if err := os.WriteFile(p, []byte("postgres://punchflow:example@db:5432/punchflow\n"), 0o600); err != nil {
							t.Fatal(err)
						}
						env[k] = p
					}
				}
				if !ok {
					t.Errorf("%s matches no flag of %s", k, svc.Name)
				}
			}
			if want := "_INBOX_" + svc.Name; env["PUNCHFLOW_NATS_INBOX_PREFIX"] != want {
				t.Errorf("PUNCHFLOW_NATS_INBOX_PREFIX = %q, want %q (its NATS permissions)", env["PUNCHFLOW_NATS_INBOX_PREFIX"], want)
			}
			if !strings.HasSuffix(env["PUNCHFLOW_NATS_NKEY_FILE"], "/"+svc.Name+".nk") {
				t.Errorf("PUNCHFLOW_NATS_NKEY_FILE = %q: each service has its own key", env["PUNCHFLOW_NATS_NKEY_FILE"])
			}
			var out bytes.Buffer
			if err := svc.Run(context.Background(), []string{"--version"}, func(k string) string { return env[k] }, &out, &out); err != nil {
				t.Fatalf("%s rejects the example environment: %v", svc.Name, err)
			}
		})
	}
}

// TestProvisionUnit checks that the provisioning unit runs the collector
// once and then healthwatch, both with the admin key and provisioning on,
// with flags they accept.
func TestProvisionUnit(t *testing.T) {
	u := readUnit(t, "punchflow-provision.service")
	if u.get("Service", "Type") != "oneshot" || u.get("Service", "RemainAfterExit") != "yes" {
		t.Errorf("Type=%q RemainAfterExit=%q: want a oneshot that stays active", u.get("Service", "Type"), u.get("Service", "RemainAfterExit"))
	}
	execs := u["Service"]["ExecStart"]
	if len(execs) != 2 {
		t.Fatalf("%d ExecStart lines, want the collector's and healthwatch's", len(execs))
	}
	shared := readEnv(t, "punchflow.env.example")
	for i, name := range []string{"collector", "healthwatch"} {
		args := strings.Fields(strings.ReplaceAll(execs[i], "${RUNTIME_DIRECTORY}", t.TempDir()))
		for len(args) > 0 && args[0] != "/usr/local/bin/"+name {
			args = args[1:] // a wrapper such as timeout
		}
		if len(args) == 0 {
			t.Fatalf("ExecStart %d does not run %s: %s", i+1, name, execs[i])
		}
		if !slices.Contains(args, "--provision=true") {
			t.Errorf("%s: no --provision=true", name)
		}
		if j := slices.Index(args, "--nats-nkey-file"); j < 0 || !strings.HasSuffix(args[j+1], "/admin.nk") {
			t.Errorf("%s does not use the admin key: %v", name, args)
		}
		svc, _ := svctest.Lookup(name)
		var out bytes.Buffer
		if err := svc.Run(context.Background(), append(args[1:], "--version"), func(k string) string { return shared[k] }, &out, &out); err != nil {
			t.Fatalf("%s rejects the provisioning command: %v", name, err)
		}
	}
	if !slices.Contains(strings.Fields(execs[0]), "--once") {
		t.Error("the collector does not run --once")
	}
}
