package deploy

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/punchflow/punchflow/deploy/internal/svctest"
	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/platform/servicetest"
	loader "github.com/punchflow/punchflow/services/loader/app"
)

func startServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, true, true
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSecretsNeverLogged starts the real loader with a NATS password in its
// URL and a PostgreSQL URL with a password read from a file
// (PUNCHFLOW_POSTGRES_URL_FILE), at debug level, loads nothing, stops it,
// and checks that neither secret appears anywhere in its logs; then starts
// it against a database that is down and checks the error it returns.
func TestSecretsNeverLogged(t *testing.T) {
	const natsPassword = "nats-Secr3t-0b1e"
	const pgPassword = "pg-Secr3t-9f2a"
	ns := startServer(t, &server.Options{Users: []*server.User{{Username: "loader", Password: natsPassword}}})
	natsURL := fmt.Sprintf("nats://loader:%s@%s", natsPassword, ns.Addr().String())

	pg, err := url.Parse(dbtest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	pg.User = url.UserPassword(pg.User.Username(), pgPassword) // trust auth ignores it; it must still never show
	pgFile := writeFile(t, "postgres-url", pg.String()+"\n")

	secrets := []string{natsPassword, pgPassword, url.QueryEscape(pgPassword)}
	check := func(t *testing.T, what, text string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s contains a secret (%q):\n%s", what, s, svctest.Tail(text, 3000))
			}
		}
	}
	env := map[string]string{"PUNCHFLOW_POSTGRES_URL_FILE": pgFile}
	getenv := func(k string) string { return env[k] }
	svc := svctest.Service{Name: "loader", Run: loader.Run, Port: 8083}

	t.Run("a clean start and stop", func(t *testing.T) {
		r := svctest.Start(t, svc, []string{"--nats-url", natsURL, "--sqlite-path", "", "--log-level", "debug", "--log-format", "json"}, getenv)
		r.WaitReady(t, 60*time.Second)
		_, body, err := r.Get("/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		logs := r.Logs.String()
		check(t, "the loader's logs", logs)
		check(t, "the loader's /metrics", body)
		// The settings are logged, masked: the URL read from a file as a
		// whole, the NATS URL with its password replaced.
		if !strings.Contains(logs, `"postgres-url":"***"`) || !strings.Contains(logs, `"nats-url":"nats://loader:xxxxx@`) {
			t.Errorf("the start-up log does not show the masked settings:\n%s", svctest.Tail(logs, 3000))
		}
	})

	t.Run("a database that is down", func(t *testing.T) {
		down := *pg
		down.Host = "127.0.0.1:1"
		env := map[string]string{"PUNCHFLOW_POSTGRES_URL_FILE": writeFile(t, "postgres-url", down.String())}
		var logs servicetest.Buffer
		// The loader waits for its database, retrying, until it is stopped.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := loader.Run(ctx, []string{"--nats-url", natsURL, "--sqlite-path", "", "--http-addr", servicetest.FreeAddr(t), "--log-level", "debug", "--log-format", "json"},
			func(k string) string { return env[k] }, io.Discard, &logs)
		if err != nil {
			check(t, "the returned error", err.Error())
		}
		check(t, "the loader's logs", logs.String())
		if !strings.Contains(logs.String(), "127.0.0.1:1") && (err == nil || !strings.Contains(err.Error(), "127.0.0.1:1")) {
			t.Errorf("neither the logs nor the error report the unreachable database (err %v):\n%s", err, svctest.Tail(logs.String(), 3000))
		}
	})
}

// TestCredentialsFile runs a real service with a NATS credentials file
// (user JWT and NKey seed, decentralized auth) against a server in operator
// mode, and checks that the seed and the JWT never reach the logs.
func TestCredentialsFile(t *testing.T) {
	op, _ := nkeys.CreateOperator()
	opPub, _ := op.PublicKey()
	acc, _ := nkeys.CreateAccount()
	accPub, _ := acc.PublicKey()
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	userSeed, _ := user.Seed()

	opJWT, err := jwt.NewOperatorClaims(opPub).Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	ac := jwt.NewAccountClaims(accPub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	accJWT, err := ac.Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	uc := jwt.NewUserClaims(userPub)
	uc.IssuerAccount = accPub
	userJWT, err := uc.Encode(acc)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(userJWT, userSeed)
	if err != nil {
		t.Fatal(err)
	}
	credsFile := writeFile(t, "loader.creds", string(creds))

	sys, _ := nkeys.CreateAccount()
	sysPub, _ := sys.PublicKey()
	sysJWT, err := jwt.NewAccountClaims(sysPub).Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	conf := writeFile(t, "server.conf", fmt.Sprintf(`
listen: "127.0.0.1:-1"
jetstream { store_dir: %q }
operator: %s
system_account: %s
resolver: MEMORY
resolver_preload: { %s: %s, %s: %s }
`, t.TempDir(), opJWT, sysPub, accPub, accJWT, sysPub, sysJWT))
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	defer s.Shutdown()

	for _, tt := range []struct {
		name  string
		creds string
		ready bool
	}{
		{"valid credentials", credsFile, true},
		{"credentials of an unknown user", writeFile(t, "other.creds", string(otherCreds(t, op))), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc := svctest.Service{Name: "loader", Run: loader.Run, Port: 8083}
			args := []string{"--nats-url", s.ClientURL(), "--nats-creds-file", tt.creds, "--sqlite-path", filepath.Join(t.TempDir(), "pf.db"), "--log-format", "json"}
			r := svctest.Start(t, svc, args, func(string) string { return "" })
			if tt.ready {
				r.WaitReady(t, 60*time.Second)
			} else {
				time.Sleep(time.Second)
				if code, _, err := r.Get("/readyz"); err == nil && code == 200 {
					t.Fatal("ready with credentials the server does not know")
				}
			}
			if err := r.Stop(30 * time.Second); err != nil && tt.ready {
				t.Fatal(err)
			}
			logs := r.Logs.String()
			for _, secret := range []string{string(userSeed), userJWT} {
				if strings.Contains(logs, secret) {
					t.Errorf("the logs contain the credentials:\n%s", svctest.Tail(logs, 3000))
				}
			}
		})
	}
}

// otherCreds are well-formed credentials signed by an account the server
// does not know.
func otherCreds(t *testing.T, op nkeys.KeyPair) []byte {
	t.Helper()
	acc, _ := nkeys.CreateAccount()
	accPub, _ := acc.PublicKey()
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	seed, _ := user.Seed()
	uc := jwt.NewUserClaims(userPub)
	uc.IssuerAccount = accPub
	j, err := uc.Encode(acc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := jwt.FormatUserConfig(j, seed)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
