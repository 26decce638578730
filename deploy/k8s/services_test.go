package k8s

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	sigsyaml "sigs.k8s.io/yaml"

	"github.com/punchflow/punchflow/deploy/internal/pod"
	"github.com/punchflow/punchflow/deploy/internal/svctest"
	"github.com/punchflow/punchflow/platform/config"
)

// externalFiles stands in for the Secrets an overlay expects to exist.
func externalFiles() pod.External {
	ext := pod.External{
		"loader-database": {"postgres-url": []byte("postgres://loader:not-a-real-password@db:5432/punchflow\n")},
		"nats-ca":         {"ca.crt": []byte("-----BEGIN CERTIFICATE-----\n")},
	}
	for _, s := range svctest.Services {
		ext["punchflow-nats-"+s.Name] = map[string][]byte{"nkey": []byte("SUAEXAMPLE")}
	}
	// One device nobody answers for: the fleet starts, seeds its work
	// queue, binds its consumers and reports the device unreachable.
	ext["collector-fleet"] = map[string][]byte{"fleet.yaml": []byte(`defaults:
  site: hq
  time_zone: Europe/Berlin
devices:
  - serial: TEST0001
    address: 127.0.0.1
    port: 9
    comm_key_file: /etc/punchflow/comm-keys/hq.key
`)}
	ext["collector-comm-keys"] = map[string][]byte{"hq.key": []byte("12345\n")}
	return ext
}

// TestServiceConfiguration starts each service the way each overlay's
// Deployment does (its arguments, environment and mounted files) with
// --version, which parses and checks the whole configuration (the
// ConfigMap's settings file, the PUNCHFLOW_* environment and the *_FILE
// secrets) without starting anything. It also checks that every setting the
// manifests name is one of the service's flags.
func TestServiceConfiguration(t *testing.T) {
	for _, ov := range overlays {
		objs := render(t, ov.dir)
		for _, svc := range svctest.Services {
			t.Run(ov.dir+"/"+svc.Name, func(t *testing.T) {
				flags, err := svctest.Flags(svc)
				if err != nil {
					t.Fatal(err)
				}
				isFlag := func(name string) bool { return slices.Contains(flags, name) }
				c, err := pod.FromDeployment(objs, svc.Name, t.TempDir(), externalFiles())
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range c.Args {
					name := strings.SplitN(strings.TrimLeft(a, "-"), "=", 2)[0]
					if strings.HasPrefix(a, "-") && !isFlag(name) {
						t.Errorf("argument %q: %s has no flag %q", a, svc.Name, name)
					}
				}
				for _, k := range sortedKeys(c.Env) {
					if !strings.HasPrefix(k, config.EnvPrefix) {
						continue
					}
					ok := false
					for _, f := range flags {
						if k == config.EnvName(f) || k == config.EnvName(f)+"_FILE" {
							ok = true
						}
					}
					if !ok {
						t.Errorf("environment %s matches no flag of %s", k, svc.Name)
					}
				}
				cfgPath := ""
				for _, a := range c.Args {
					if v, ok := strings.CutPrefix(a, "--config="); ok {
						cfgPath = v
					}
				}
				if cfgPath == "" {
					t.Fatal("the Deployment gives no --config")
				}
				b, err := os.ReadFile(cfgPath)
				if err != nil {
					t.Fatalf("settings file: %v", err)
				}
				var settings map[string]any
				if err := sigsyaml.Unmarshal(b, &settings); err != nil {
					t.Fatalf("settings file: %v", err)
				}
				var names []string
				keys("", settings, &names)
				for _, k := range names {
					if !isFlag(k) && !isFlag(strings.TrimSuffix(k, config.FileSuffix)) {
						t.Errorf("settings file key %q is no flag of %s", k, svc.Name)
					}
				}
				if addr, _ := settings["http-addr"].(string); !strings.HasSuffix(addr, ":"+strconv.Itoa(svc.Port)) {
					t.Errorf("http-addr %q does not serve the container port %d", addr, svc.Port)
				}
				if settings["provision"] != false {
					t.Errorf("provision is not false: NACK owns the streams in Kubernetes")
				}

				var out bytes.Buffer
				err = svc.Run(context.Background(), append(c.Args, "--version"), c.Getenv, &out, &out)
				if err != nil {
					t.Fatalf("%s rejects its configuration: %v", svc.Name, err)
				}
				if !strings.HasPrefix(out.String(), svc.Name+" ") {
					t.Fatalf("--version printed %q", out.String())
				}
			})
		}
	}
}
