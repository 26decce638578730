// Package svctest runs punchflow's four services in-process through their
// Run functions, as tests of deployment material need them: with the
// arguments and environment a manifest gives, waiting for /readyz, scraping
// /metrics, and stopping them cleanly.
package svctest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchflow/punchflow/platform/cli"
	collector "github.com/punchflow/punchflow/services/collector/app"
	healthwatch "github.com/punchflow/punchflow/services/healthwatch/app"
	loader "github.com/punchflow/punchflow/services/loader/app"
	transformer "github.com/punchflow/punchflow/services/transformer/app"
)

// Service is one of the four, with its default ops port.
type Service struct {
	Name string
	Run  cli.RunFunc
	Port int
}

// Services are the four services in pipeline order.
var Services = []Service{
	{"collector", collector.Run, 8081},
	{"transformer", transformer.Run, 8082},
	{"loader", loader.Run, 8083},
	{"healthwatch", healthwatch.Run, 8084},
}

// Lookup returns the service called name.
func Lookup(name string) (Service, bool) {
	for _, s := range Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

var flagLine = regexp.MustCompile(`^\s+-([a-z0-9][a-z0-9-]*)`)

// Flags returns the names of the flags a service defines, read from its -h
// output, sorted.
func Flags(s Service) ([]string, error) {
	var out bytes.Buffer
	if err := s.Run(context.Background(), []string{"-h"}, func(string) string { return "" }, &out, &out); err != nil {
		return nil, fmt.Errorf("%s -h: %w", s.Name, err)
	}
	var names []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if m := flagLine.FindStringSubmatch(sc.Text()); m != nil {
			names = append(names, m[1])
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s -h listed no flags:\n%s", s.Name, out.String())
	}
	sort.Strings(names)
	return names, nil
}

// Buffer is a goroutine-safe log sink.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Running is a started service.
type Running struct {
	Service Service
	Addr    string // its ops address
	Logs    *Buffer
	cancel  context.CancelFunc
	done    chan error
}

// FreeAddr returns a free loopback address for an ops server.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start runs s with args (an --http-addr on a free port is appended) and
// getenv, and stops it when the test ends, failing the test if it does not
// return cleanly. Call WaitReady before using it.
func Start(t testing.TB, s Service, args []string, getenv func(string) string) *Running {
	t.Helper()
	r := &Running{Service: s, Addr: FreeAddr(t), Logs: &Buffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	args = append(append([]string(nil), args...), "--http-addr", r.Addr)
	go func() { r.done <- s.Run(ctx, args, getenv, io.Discard, r.Logs) }()
	t.Cleanup(func() {
		if err := r.Stop(30 * time.Second); err != nil {
			t.Errorf("%s: %v\n%s", s.Name, err, Tail(r.Logs.String(), 4000))
		}
	})
	return r
}

// Stop cancels the service and waits for Run to return; a second call
// returns nil at once.
func (r *Running) Stop(within time.Duration) error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			return fmt.Errorf("stopped with error: %w", err)
		}
		return nil
	case <-time.After(within):
		return fmt.Errorf("did not stop within %v", within)
	}
}

// WaitReady waits until /readyz answers 200, failing the test if the service
// exits or the time runs out.
func (r *Running) WaitReady(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		select {
		case err := <-r.done:
			r.cancel = nil
			t.Fatalf("%s exited before it was ready: %v\n%s", r.Service.Name, err, Tail(r.Logs.String(), 4000))
		default:
		}
		code, body, err := r.Get("/readyz")
		if err == nil && code == http.StatusOK {
			return
		}
		last = fmt.Sprintf("%d %s %v", code, body, err)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %v: %s\n%s", r.Service.Name, within, last, Tail(r.Logs.String(), 4000))
}

// httpClient times out: a service's ops port accepts connections before it
// serves them (until its start-up is done), as a kubelet's probes see.
var httpClient = &http.Client{Timeout: 2 * time.Second}

// Get fetches a path from the service's ops server.
func (r *Running) Get(path string) (int, string, error) {
	resp, err := httpClient.Get("http://" + r.Addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// Metrics scrapes /metrics and returns every sample line, keyed by its
// series (name and labels).
func (r *Running) Metrics() (map[string]float64, error) {
	code, body, err := r.Get("/metrics")
	if err != nil || code != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: %d %v", r.Service.Name, code, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscanf(line[i+1:], "%g", &v); err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, nil
}

// Tail returns the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
