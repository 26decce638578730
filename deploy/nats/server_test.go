// Package natsdeploy holds punchflow's NATS server configuration (accounts,
// users, permissions; the single-server configuration; the Helm values) and
// the tests that start nats-server with it.
package natsdeploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/punchflow/punchflow/deploy/internal/manifest"
	"github.com/punchflow/punchflow/deploy/internal/nack"
	"github.com/punchflow/punchflow/platform/natstest"
)

// Roles are the NATS users of punchflow-accounts.conf, by the suffix of
// their PUNCHFLOW_NKEY_* variable.
var roles = []string{"admin", "collector", "transformer", "loader", "healthwatch", "readers_admin", "reader"}

// secured is a nats-server started from punchflow-accounts.conf, with TLS
// that requires client certificates.
type secured struct {
	server *server.Server
	url    string
	certs  natstest.TLSFiles
	// seeds maps a role to the file holding its NKey seed.
	seeds map[string]string
	dir   string
}

// startSecured writes a server configuration that includes the shipped
// accounts file, generates a key pair per role (public keys go into the
// environment, as nats-server reads them) and TLS certificates, and starts
// the server in-process with server.ProcessConfigFile.
func startSecured(t *testing.T) *secured {
	t.Helper()
	dir := t.TempDir()
	s := &secured{certs: natstest.WriteTLSFiles(t), seeds: startSecuredKeys(t, dir), dir: dir}
	accounts, err := os.ReadFile("punchflow-accounts.conf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "punchflow-accounts.conf"), accounts, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`
listen: "127.0.0.1:-1"
server_name: punchflow-test
jetstream { store_dir: %q }
tls {
  cert_file: %q
  key_file: %q
  ca_file: %q
  verify: true
  timeout: 2
}
include ./punchflow-accounts.conf
`, filepath.Join(dir, "js"), s.certs.ServerCert, s.certs.ServerKey, s.certs.CA)
	path := filepath.Join(dir, "nats-server.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server rejects the configuration: %v", err)
	}
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	s.server = srv
	s.url = strings.Replace(srv.ClientURL(), "nats://", "tls://", 1)
	return s
}

// startSecuredKeys creates a key pair per role, puts the public keys into
// the environment (PUNCHFLOW_NKEY_<ROLE>, where nats-server reads them) and
// writes the seeds into dir; it returns the seed files by role.
func startSecuredKeys(t *testing.T, dir string) map[string]string {
	t.Helper()
	seeds := map[string]string{}
	for _, r := range roles {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		seed, _ := kp.Seed()
		t.Setenv("PUNCHFLOW_NKEY_"+strings.ToUpper(r), pub)
		seeds[r] = filepath.Join(dir, r+".nk")
		if err := os.WriteFile(seeds[r], seed, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return seeds
}

// client is a connection as one role, recording the permission violations
// the server reports to it.
type client struct {
	role string
	nc   *nats.Conn
	js   jetstream.JetStream

	mu         sync.Mutex
	violations []string
	seen       chan struct{}
}

// connect connects as role with TLS and the role's NKey seed. inbox is the
// reply prefix ("" for the default).
func (s *secured) connect(t *testing.T, role, inbox string) *client {
	t.Helper()
	c := &client{role: role, seen: make(chan struct{}, 64)}
	nkey, err := nats.NkeyOptionFromSeed(s.seeds[role])
	if err != nil {
		t.Fatal(err)
	}
	opts := []nats.Option{nkey, nats.RootCAs(s.certs.CA), nats.ClientCert(s.certs.ClientCert, s.certs.ClientKey), nats.Name("test-" + role),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				c.mu.Lock()
				c.violations = append(c.violations, err.Error())
				c.mu.Unlock()
				select {
				case c.seen <- struct{}{}:
				default:
				}
			}
		})}
	if inbox != "" {
		opts = append(opts, nats.CustomInboxPrefix(inbox))
	}
	nc, err := nats.Connect(s.url, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return c
}

// errDenied marks an action the server refused for lack of permission.
var errDenied = errors.New("permission denied")

// do runs action and reports errDenied (wrapping the server's message) if
// the server reports a permission violation while it runs, else the
// action's own result. A refused publish or request never gets an answer,
// so do returns as soon as the violation arrives instead of waiting for the
// action's timeout.
func (c *client) do(action func(ctx context.Context) error) error {
	c.mu.Lock()
	before := len(c.violations)
	c.mu.Unlock()
	for len(c.seen) > 0 {
		<-c.seen
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- action(ctx) }()
	var err error
	select {
	case err = <-done:
		// A violation can arrive just after a request fails on its own.
		_ = c.nc.Flush()
		time.Sleep(5 * time.Millisecond)
	case <-c.seen:
		cancel()
		<-done
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.violations) > before {
		return fmt.Errorf("%w: %s", errDenied, c.violations[len(c.violations)-1])
	}
	return err
}

// provision creates the prod overlay's JetStream resources as NACK would:
// the PUNCHFLOW account's with its admin, the READERS account's (the mirror
// of RAW) with its admin.
func (s *secured) provision(t *testing.T) {
	t.Helper()
	objs, err := manifest.Render("../k8s/overlays/prod")
	if err != nil {
		t.Fatal(err)
	}
	for account, role := range map[string]string{"punchflow": "admin", "readers": "readers_admin"} {
		top, err := nack.FromObjects(objs, account)
		if err != nil {
			t.Fatal(err)
		}
		if len(top.Streams) == 0 {
			t.Fatalf("the prod overlay declares no stream in account %s", account)
		}
		admin := s.connect(t, role, "")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := top.WithReplicas(1).Apply(ctx, admin.js); err != nil {
			cancel()
			t.Fatalf("provision account %s as %s: %v", account, role, err)
		}
		cancel()
	}
}
