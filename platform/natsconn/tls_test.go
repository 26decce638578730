package natsconn

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/natstest"
)

// startTLS runs a JetStream server that requires TLS with a client
// certificate signed by the test CA.
func startTLS(t *testing.T, certs natstest.TLSFiles) string {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, CaFile: certs.CA, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(), TLS: true, TLSVerify: true, TLSConfig: tc, TLSTimeout: 2})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
	return strings.Replace(s.ClientURL(), "nats://", "tls://", 1)
}

func waitConnected(o Options, within time.Duration) (bool, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc, err := Connect(o, "tls-test", log, nil)
	if err != nil {
		return false, err
	}
	defer nc.Close()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if nc.IsConnected() {
			js, err := jetstream.New(nc)
			if err != nil {
				return false, err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err = js.AccountInfo(ctx) // a JetStream round trip over the TLS connection
			return err == nil, err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false, nc.LastError()
}

func TestConnectTLS(t *testing.T) {
	certs := natstest.WriteTLSFiles(t)
	url := startTLS(t, certs)
	tests := []struct {
		name   string
		o      Options
		within time.Duration
		want   bool
	}{
		{"mutual TLS", Options{URLs: url, TLSCA: certs.CA, TLSCert: certs.ClientCert, TLSKey: certs.ClientKey}, 5 * time.Second, true},
		{"no client certificate", Options{URLs: url, TLSCA: certs.CA}, 500 * time.Millisecond, false},
		{"server signed by an untrusted CA", Options{URLs: url, TLSCA: certs.OtherCA, TLSCert: certs.ClientCert, TLSKey: certs.ClientKey}, 500 * time.Millisecond, false},
		{"a server certificate as the client certificate", Options{URLs: url, TLSCA: certs.CA, TLSCert: certs.ServerCert, TLSKey: certs.ServerKey}, 500 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.MaxReconnectWait = 100 * time.Millisecond
			if err := tt.o.Validate(); err != nil {
				t.Fatal(err)
			}
			got, err := waitConnected(tt.o, tt.within)
			if got != tt.want {
				t.Fatalf("connected = %v (last error %v), want %v", got, err, tt.want)
			}
		})
	}
}

func TestInboxPrefix(t *testing.T) {
	// The user may subscribe only to its own reply subjects.
	perms := &server.Permissions{Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX_svc.>"}}}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: true, StoreDir: t.TempDir(),
		Users: []*server.User{{Username: "svc", Password: "pw", Permissions: perms}}})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("server not ready")
	}
	defer s.Shutdown()
	url := "nats://svc:pw@" + s.Addr().String()
	for _, tt := range []struct {
		prefix string
		want   bool
	}{{"_INBOX_svc", true}, {"", false}} {
		t.Run("prefix "+tt.prefix, func(t *testing.T) {
			got, err := waitConnected(Options{URLs: url, InboxPrefix: tt.prefix, MaxReconnectWait: time.Second}, 3*time.Second)
			if got != tt.want {
				t.Fatalf("JetStream request with inbox prefix %q succeeded = %v (%v), want %v", tt.prefix, got, err, tt.want)
			}
		})
	}
}

func TestValidateInboxPrefix(t *testing.T) {
	for _, p := range []string{"_INBOX.>", "a b", "_INBOX.", ".x", "a..b", "x.*"} {
		o := Options{URLs: "nats://a", InboxPrefix: p, MaxReconnectWait: time.Second}
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "nats-inbox-prefix") {
			t.Errorf("Validate(inbox prefix %q) = %v, want an error naming nats-inbox-prefix", p, err)
		}
	}
	for _, p := range []string{"", "_INBOX", "_INBOX_collector", "_INBOX.collector"} {
		o := Options{URLs: "nats://a", InboxPrefix: p, MaxReconnectWait: time.Second}
		if err := o.Validate(); err != nil {
			t.Errorf("Validate(inbox prefix %q) = %v", p, err)
		}
	}
}
