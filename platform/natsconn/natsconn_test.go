package natsconn

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

type counter struct {
	mu    sync.Mutex
	kinds map[string]int
}

func (c *counter) Inc(kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kinds[kind]++
}

func (c *counter) get(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kinds[kind]
}

// startWithNKey runs a server that admits only one NKey user, who may not
// publish to forbidden.>.
func startWithNKey(t *testing.T) (url, seedFile string, otherSeedFile string) {
	t.Helper()
	user, _ := nkeys.CreateUser()
	pub, _ := user.PublicKey()
	seed, _ := user.Seed()
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		Nkeys: []*server.NkeyUser{{Nkey: pub, Permissions: &server.Permissions{Publish: &server.SubjectPermission{Deny: []string{"forbidden.>"}}}}}}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
	dir := t.TempDir()
	seedFile, otherSeedFile = filepath.Join(dir, "user.nk"), filepath.Join(dir, "other.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherSeedFile, otherSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	return s.ClientURL(), seedFile, otherSeedFile
}

func TestConnectNKeyAndPermissionViolationsAreCounted(t *testing.T) {
	url, seedFile, otherSeed := startWithNKey(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	errs := &counter{kinds: map[string]int{}}
	nc, err := Connect(Options{URLs: url, NKeyFile: seedFile, MaxReconnectWait: time.Second}, "test", log, errs)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !nc.IsConnected() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !nc.IsConnected() {
		t.Fatalf("not connected with the right NKey: %v", nc.LastError())
	}
	if err := nc.Publish("forbidden.x", []byte("no")); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	for errs.get("permission") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if errs.get("permission") != 1 {
		t.Fatalf("permission violations counted = %d, want 1 (%v)", errs.get("permission"), errs.kinds)
	}

	wrong, err := Connect(Options{URLs: url, NKeyFile: otherSeed, MaxReconnectWait: 100 * time.Millisecond}, "test", log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	time.Sleep(300 * time.Millisecond)
	if wrong.IsConnected() {
		t.Fatal("connected with an unknown NKey")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"ok", Options{URLs: "nats://a:4222", MaxReconnectWait: time.Second}, ""},
		{"no url", Options{URLs: " ", MaxReconnectWait: time.Second}, "nats-url is empty"},
		{"cert without key", Options{URLs: "nats://a", TLSCert: "c.pem", MaxReconnectWait: time.Second}, "go together"},
		{"two credentials", Options{URLs: "nats://a", CredsFile: "a", NKeyFile: "b", MaxReconnectWait: time.Second}, "alternatives"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestReconnectDelay(t *testing.T) {
	max := 4 * time.Second
	prev := time.Duration(0)
	for attempt := 1; attempt <= 10; attempt++ {
		d := reconnectDelay(attempt, max)
		if d < prev*9/10 && d < max {
			t.Fatalf("delay shrank at attempt %d: %v after %v", attempt, d, prev)
		}
		if d > max+max/5 {
			t.Fatalf("delay %v exceeds max plus jitter", d)
		}
		prev = d
	}
	if d := reconnectDelay(1, max); d < 250*time.Millisecond || d > 300*time.Millisecond {
		t.Fatalf("first delay %v, want 250ms plus up to 20%%", d)
	}
}
