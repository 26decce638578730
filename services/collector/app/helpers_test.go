package app

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/services/collector/internal/zksim"
)

// replica is one collector started through Run.
type replica struct{ *servicetest.Running }

// startCollector runs the collector with args (plus --http-addr and quiet
// JSON logs) until the test ends or it is stopped. When the test fails, its
// cleanup prints the end of the collector's log.
func startCollector(t *testing.T, name string, args ...string) *replica {
	t.Helper()
	args = append([]string{"--log-format", "json", "--shutdown-timeout", "3s"}, args...)
	r := &replica{servicetest.Start(t, name, Run, args, func(string) string { return "" })}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- %s logs (last 6 KB)\n%s", name, servicetest.Tail(r.Logs.String(), 6<<10))
		}
	})
	return r
}

// waitReady waits for /readyz of r.
func (r *replica) waitReady(t *testing.T) {
	t.Helper()
	r.WaitReady(t, 30*time.Second)
}

// writeFleet writes a fleet file for the simulated devices and returns its
// path.
func writeFleet(t *testing.T, devs []*zksim.Device, extra string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("defaults:\n  site: hq\n  time_zone: UTC\n  poll_interval: 300ms\n  timeout: 1s\ndevices:\n")
	for _, d := range devs {
		host, port, _ := net.SplitHostPort(d.Addr())
		fmt.Fprintf(&b, "  - serial: %s\n    address: %s\n    port: %s\n%s", d.Config().SerialNumber, host, port, extra)
	}
	path := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func startSim(t *testing.T, cfg zksim.Config) *zksim.Device {
	t.Helper()
	d, err := zksim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// proxy forwards TCP connections to target until Kill, which drops every
// connection and refuses new ones: a network partition of whatever
// connects through it.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	killed bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.Kill)
	return p
}

func (p *proxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.killed {
			p.mu.Unlock()
			c.Close()
			u.Close()
			return
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); u.Close() }()
		go func() { _, _ = io.Copy(c, u); c.Close() }()
	}
}

// Kill partitions everything behind the proxy.
func (p *proxy) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killed {
		return
	}
	p.killed = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }
