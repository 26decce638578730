package natsdeploy

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/punchflow/punchflow/platform/natstest"
)

// TestSingleServerConfig loads the single-server nats-server.conf as
// nats-server would (its paths pointed at a scratch directory), checks
// what it promises, starts it and lets the collector's user publish.
func TestSingleServerConfig(t *testing.T) {
	dir := t.TempDir()
	certs := natstest.WriteTLSFiles(t)
	conf, err := os.ReadFile("nats-server.conf")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(
		"/etc/nats/tls/server.crt", certs.ServerCert,
		"/etc/nats/tls/server.key", certs.ServerKey,
		"/etc/nats/tls/ca.crt", certs.CA,
		"/var/lib/nats/jetstream", filepath.Join(dir, "js"),
	).Replace(string(conf))
	if strings.Contains(text, "/etc/nats") || strings.Contains(text, "/var/lib/nats") {
		t.Fatalf("the test does not know a path of nats-server.conf:\n%s", text)
	}
	accounts, err := os.ReadFile("punchflow-accounts.conf")
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"nats-server.conf": text, "punchflow-accounts.conf": string(accounts)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := &secured{certs: certs, seeds: map[string]string{}, dir: dir}
	setKeys(t, s)

	opts, err := server.ProcessConfigFile(filepath.Join(dir, "nats-server.conf"))
	if err != nil {
		t.Fatalf("nats-server rejects nats-server.conf: %v", err)
	}
	if !opts.JetStream || !opts.SyncAlways {
		t.Errorf("JetStream %v, sync_interval always %v: want both", opts.JetStream, opts.SyncAlways)
	}
	if opts.Host != "127.0.0.1" || opts.HTTPHost != "127.0.0.1" || opts.HTTPPort != 8222 {
		t.Errorf("listen %s, monitoring %s:%d: want loopback, monitoring on 8222", opts.Host, opts.HTTPHost, opts.HTTPPort)
	}
	if opts.TLSConfig == nil {
		t.Error("no TLS")
	}
	var names []string
	for _, a := range opts.Accounts {
		names = append(names, a.Name)
	}
	sort.Strings(names)
	if !slices.Contains(names, "PUNCHFLOW") || !slices.Contains(names, "READERS") {
		t.Errorf("accounts %v", names)
	}

	opts.Port, opts.HTTPPort, opts.NoLog, opts.NoSigs = -1, -1, true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	defer srv.Shutdown()
	s.server = srv
	s.url = strings.Replace(srv.ClientURL(), "nats://", "tls://", 1)
	admin := s.connect(t, "admin", "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := admin.js.AccountInfo(ctx); err != nil {
		t.Fatalf("JetStream for the admin: %v", err)
	}
}

// setKeys gives every role a key pair, as startSecured does.
func setKeys(t *testing.T, s *secured) {
	t.Helper()
	tmp := startSecuredKeys(t, s.dir)
	for k, v := range tmp {
		s.seeds[k] = v
	}
}

var envVar = regexp.MustCompile(`\$(PUNCHFLOW_NKEY_[A-Z_]+)`)

// TestUserVariables: the variables the accounts file reads, the roles the
// tests give keys to, the Helm values' environment and the systemd example
// name the same users.
func TestUserVariables(t *testing.T) {
	accounts, err := os.ReadFile("punchflow-accounts.conf")
	if err != nil {
		t.Fatal(err)
	}
	var inConf []string
	for _, m := range envVar.FindAllStringSubmatch(string(accounts), -1) {
		if !slices.Contains(inConf, m[1]) {
			inConf = append(inConf, m[1])
		}
	}
	sort.Strings(inConf)
	var fromRoles []string
	for _, r := range roles {
		fromRoles = append(fromRoles, "PUNCHFLOW_NKEY_"+strings.ToUpper(r))
	}
	sort.Strings(fromRoles)
	if !slices.Equal(inConf, fromRoles) {
		t.Errorf("punchflow-accounts.conf reads %v; the tests know %v", inConf, fromRoles)
	}

	var values struct {
		Container struct {
			Env map[string]any `json:"env"`
		} `json:"container"`
	}
	b, err := os.ReadFile("helm-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := sigsyaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	var inHelm []string
	for k := range values.Container.Env {
		inHelm = append(inHelm, k)
	}
	sort.Strings(inHelm)
	if !slices.Equal(inConf, inHelm) {
		t.Errorf("helm-values.yaml sets %v; the accounts file reads %v", inHelm, inConf)
	}

	env, err := os.ReadFile("../systemd/punchflow-users.env.example")
	if err != nil {
		t.Fatal(err)
	}
	var inEnv []string
	for _, line := range strings.Split(string(env), "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			inEnv = append(inEnv, k)
		}
	}
	sort.Strings(inEnv)
	if !slices.Equal(inConf, inEnv) {
		t.Errorf("punchflow-users.env.example sets %v; the accounts file reads %v", inEnv, inConf)
	}
}

// TestHelmValues checks what the values promise: a 3-node cluster,
// JetStream on files with sync_interval always, TLS, monitoring, the
// exporter with a PodMonitor, and the accounts file mounted where the
// include points.
func TestHelmValues(t *testing.T) {
	b, err := os.ReadFile("helm-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := sigsyaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	get := func(p ...string) any {
		var cur any = v
		for _, k := range p {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = m[k]
		}
		return cur
	}
	for _, c := range []struct {
		path []string
		want any
	}{
		{[]string{"config", "cluster", "enabled"}, true},
		{[]string{"config", "cluster", "replicas"}, float64(3)},
		{[]string{"config", "jetstream", "enabled"}, true},
		{[]string{"config", "jetstream", "fileStore", "enabled"}, true},
		{[]string{"config", "jetstream", "memoryStore", "enabled"}, false},
		{[]string{"config", "jetstream", "merge", "sync_interval"}, "always"},
		{[]string{"config", "nats", "tls", "enabled"}, true},
		{[]string{"config", "monitor", "enabled"}, true},
		{[]string{"promExporter", "enabled"}, true},
		{[]string{"promExporter", "podMonitor", "enabled"}, true},
	} {
		if got := get(c.path...); got != c.want {
			t.Errorf("%s = %v, want %v", strings.Join(c.path, "."), got, c.want)
		}
	}
	include, _ := get("config", "merge", "$include").(string)
	mounted := ""
	patches, _ := get("container", "patch").([]any)
	for _, p := range patches {
		if m, ok := p.(map[string]any); ok {
			if val, ok := m["value"].(map[string]any); ok && val["name"] == "punchflow-accounts" {
				mounted, _ = val["mountPath"].(string)
			}
		}
	}
	// The chart writes its configuration to /etc/nats-config/nats.conf.
	if got := path.Join("/etc/nats-config", include); got != path.Join(mounted, "punchflow-accounts.conf") {
		t.Errorf("the include resolves to %s but the accounts ConfigMap is mounted at %s", got, mounted)
	}
}
