// Package servicetest runs a punchflow service in-process through its Run
// function for tests: on a free ops port, waiting for /readyz, reading its
// logs and /metrics, and stopping it cleanly when the test ends. It also
// holds the small helpers every service test needs (a goroutine-safe log
// buffer, a free address, polling until a condition holds).
package servicetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchflow/punchflow/platform/cli"
)

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

// Running is a service started through its Run function.
type Running struct {
	Name   string
	Addr   string // its ops address
	Logs   *Buffer
	cancel context.CancelFunc
	done   chan error
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

// FreePortRange returns a port p such that the n loopback ports p …
// p+n-1 were free for TCP and UDP a moment ago: for programs that listen
// on consecutive ports (a simulated device fleet, the demo's services).
func FreePortRange(t testing.TB, n int) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if base+n-1 <= 65535 && portsFree(base, n) {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports found", n)
	return 0
}

// portsFree reports whether TCP and UDP could listen on the n loopback
// ports from base.
func portsFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		addr := "127.0.0.1:" + strconv.Itoa(p)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		pc, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			return false
		}
		pc.Close()
	}
	return true
}

// Start runs a service's Run function (name is for messages) with args (an
// --http-addr on a free port is appended) and getenv, and stops it when the
// test ends, failing the test if it does not return cleanly. Call WaitReady
// before using it.
func Start(t testing.TB, name string, run cli.RunFunc, args []string, getenv func(string) string) *Running {
	t.Helper()
	r := &Running{Name: name, Addr: FreeAddr(t), Logs: &Buffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	args = append(append([]string(nil), args...), "--http-addr", r.Addr)
	go func() { r.done <- run(ctx, args, getenv, io.Discard, r.Logs) }()
	t.Cleanup(func() {
		if err := r.Stop(30 * time.Second); err != nil {
			t.Errorf("%s: %v\n%s", name, err, Tail(r.Logs.String(), 4000))
		}
	})
	return r
}

// ErrStillRunning is what Stop and Wait return when Run has not returned in
// time.
var ErrStillRunning = errors.New("still running")

// Stop cancels the service and waits for Run to return; a second call
// returns nil at once.
func (r *Running) Stop(within time.Duration) error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	return r.Wait(within)
}

// Wait waits for Run to return by itself (a one-shot run) or after Stop,
// and returns its error; ErrStillRunning when it has not returned within.
func (r *Running) Wait(within time.Duration) error {
	if r.cancel == nil {
		return nil
	}
	select {
	case err := <-r.done:
		r.exited()
		if err != nil {
			return fmt.Errorf("stopped with error: %w", err)
		}
		return nil
	case <-time.After(within):
		return fmt.Errorf("%w after %v", ErrStillRunning, within)
	}
}

// exited records that Run has returned: later calls of Stop and Wait return
// nil at once.
func (r *Running) exited() {
	r.cancel()
	r.cancel = nil
}

// WaitReady waits until /readyz answers 200, failing the test if the service
// exits or the time runs out.
func (r *Running) WaitReady(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		r.CheckRunning(t)
		code, body, err := r.Get("/readyz")
		if err == nil && code == http.StatusOK {
			return
		}
		last = fmt.Sprintf("%d %s %v", code, body, err)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %v: %s\n%s", r.Name, within, last, Tail(r.Logs.String(), 4000))
}

// CheckRunning fails the test at once if the service's Run has returned.
func (r *Running) CheckRunning(t testing.TB) {
	t.Helper()
	select {
	case err := <-r.done:
		r.exited()
		t.Fatalf("%s exited early: %v\n%s", r.Name, err, Tail(r.Logs.String(), 4000))
	default:
	}
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
		return nil, fmt.Errorf("%s /metrics: %d %v", r.Name, code, err)
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

// WaitFor polls cond every 50ms until it holds, failing the test with what
// and cond's last description of the state when timeout passes.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	WaitSteady(t, what, timeout, 0, cond)
}

// WaitSteady is WaitFor for a condition that must hold on every look for
// at least steady: JetStream counts a message just published as pending a
// moment later, so a consumer can look idle before its work arrives.
func WaitSteady(t testing.TB, what string, timeout, steady time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	var since time.Time // the first look of the current run of looks that held
	for time.Now().Before(deadline) {
		ok, state := cond()
		switch {
		case !ok:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		}
		if ok && time.Since(since) >= steady {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, last)
}
