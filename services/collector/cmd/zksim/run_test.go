package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/services/collector/internal/fleet"
	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// started is a zksim run in the background.
type started struct {
	lines  []string // stdout up to and including the "serving" line
	cancel context.CancelFunc
	done   chan error // run's result
	rest   chan []string
}

// startRun runs zksim with args until the test ends (or stop is called)
// and returns once it serves, or fails the test with run's error.
func startRun(t *testing.T, args ...string) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	s := &started{cancel: cancel, done: make(chan error, 1), rest: make(chan []string, 1)}
	go func() {
		err := run(ctx, args, func(string) string { return "" }, pw, io.Discard)
		pw.CloseWithError(fmt.Errorf("run returned: %v", err))
		s.done <- err
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		s.lines = append(s.lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "serving ") {
			break
		}
	}
	if err := sc.Err(); err != nil {
		cancel()
		t.Fatalf("zksim %s: %v\noutput:\n%s", strings.Join(args, " "), err, strings.Join(s.lines, "\n"))
	}
	go func() {
		var rest []string
		for sc.Scan() {
			rest = append(rest, sc.Text())
		}
		s.rest <- rest
	}()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop cancels the run (as Ctrl-C does) and checks that it ended cleanly.
func (s *started) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok && err != nil {
			t.Errorf("run after cancel: %v, want nil", err)
		}
		if ok {
			close(s.done)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10 s of the cancel")
	}
}

// devices returns the serial and address of every device listed.
func (s *started) devices(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range s.lines[1:] {
		f := strings.Fields(line)
		if len(f) < 2 {
			break
		}
		if _, p, err := net.SplitHostPort(f[1]); err != nil || p == "" {
			break
		}
		out[f[0]] = f[1]
	}
	return out
}

// TestRunServesFleet: a fleet started from flags and a YAML file with a
// per-device override answers the Go client on every port with its own
// serial and data; the fleet file it writes is a valid collector fleet file
// for the same devices; Ctrl-C stops it and frees the ports.
func TestRunServesFleet(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(config, []byte(`
users: 6
records: 120
site: hq
time-zone: Europe/Berlin
overrides:
  - index: 1
    serial: GATE-B
    records: 30
    commkey: 4242
    udp: true
    faults:
      start-disabled: true
`), 0o644); err != nil {
		t.Fatal(err)
	}
	fleetFile := filepath.Join(dir, "out.yaml")
	r := startRun(t, "--config", config, "--listen", "127.0.0.1:0", "--devices", "3", "--commkey", "77", "--fleet-file", fleetFile, "--mode", "live")

	listed := r.devices(t)
	if len(listed) != 3 {
		t.Fatalf("listed %d devices, want 3:\n%s", len(listed), strings.Join(r.lines, "\n"))
	}
	want := []struct {
		serial  string
		key     uint32
		udp     bool
		records int
	}{
		{"SIM0001", 77, false, 120},
		{"GATE-B", 4242, true, 30},
		{"SIM0003", 77, false, 120},
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for _, w := range want {
		addr, ok := listed[w.serial]
		if !ok {
			t.Fatalf("device %s not listed:\n%s", w.serial, strings.Join(r.lines, "\n"))
		}
		opts := []zk.Option{zk.WithCommKey(w.key)}
		if w.udp {
			opts = append(opts, zk.WithUDP())
		}
		c, err := zk.Dial(ctx, addr, opts...)
		if err != nil {
			t.Fatalf("dial %s at %s: %v", w.serial, addr, err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var recs []zk.AttendanceRecord
		err = c.WithDisabled(ctx, func(ctx context.Context) (err error) {
			recs, _, err = c.Attendance(ctx)
			return err
		})
		c.Close()
		if err != nil || info.SerialNumber != w.serial || len(recs) != w.records {
			t.Errorf("device at %s: serial %q, %d records, %v; want %s with %d records", addr, info.SerialNumber, len(recs), err, w.serial, w.records)
		}
	}

	// The fleet file lists the same devices for the collector, comm keys
	// from the environment variables zksim printed.
	env := map[string]string{}
	for _, line := range r.lines {
		if _, kv, ok := strings.Cut(line, "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	devs, err := fleet.LoadFile(fleetFile, func(k string) string { return env[k] })
	if err != nil {
		b, _ := os.ReadFile(fleetFile)
		t.Fatalf("the collector refuses the fleet file: %v\n%s", err, b)
	}
	if len(devs) != len(want) {
		t.Fatalf("fleet file has %d devices, want %d", len(devs), len(want))
	}
	for i, d := range devs {
		w := want[i]
		if d.Serial != w.serial || d.Addr() != listed[w.serial] || d.UDP != w.udp || d.Site != "hq" || d.TimeZone != "Europe/Berlin" ||
			d.Mode != fleet.ModeLive || !d.CommKey.Set() {
			t.Errorf("fleet file device %d = %+v, want %s at %s, udp %v, site hq, Europe/Berlin, live, with a key", i, d, w.serial, listed[w.serial], w.udp)
		}
	}
	// Each key reaches the device it belongs to: a collector session with it succeeds.
	for i, d := range devs {
		c, err := zk.Dial(ctx, d.Addr(), zk.WithCommKey(want[i].key))
		if err != nil {
			t.Errorf("dial %s with its key: %v", d.Serial, err)
			continue
		}
		c.Close()
	}
	if got, want := env["ZKSIM_COMMKEY"]+","+env["ZKSIM_COMMKEY_GATE_B"], "77,4242"; got != want {
		t.Errorf("printed comm keys %q, want %q", got, want)
	}

	r.stop(t)
	rest := <-r.rest
	if len(rest) == 0 || !strings.HasPrefix(rest[len(rest)-1], "stopped: ") {
		t.Errorf("output after Ctrl-C = %q, want a stopped line", rest)
	}
	for serial, addr := range listed {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("device %s still listens on %s after stop", serial, addr)
		}
	}
}

// TestRunConsecutivePorts: the devices listen on the given port and the
// following ones.
func TestRunConsecutivePorts(t *testing.T) {
	const n = 4
	var r *started
	var base int
	for attempt := 0; r == nil; attempt++ {
		base = servicetest.FreePortRange(t, n)
		s, err := tryRun(t, "--listen", "127.0.0.1:"+strconv.Itoa(base), "--devices", strconv.Itoa(n), "--users", "3", "--records", "10")
		if err == nil {
			r = s
		} else if attempt == 5 || !strings.Contains(err.Error(), "cannot listen") {
			t.Fatal(err)
		}
	}
	listed := r.devices(t)
	for i := range n {
		serial := fmt.Sprintf("SIM%04d", i+1)
		if want := "127.0.0.1:" + strconv.Itoa(base+i); listed[serial] != want {
			t.Errorf("%s listens on %q, want %s", serial, listed[serial], want)
		}
		c, err := zk.Dial(t.Context(), listed[serial])
		if err != nil {
			t.Fatalf("dial %s: %v", serial, err)
		}
		got, err := c.Option(t.Context(), zk.OptionSerialNumber)
		c.Close()
		if err != nil || got != serial {
			t.Errorf("device on port %d: serial %q, %v; want %s", base+i, got, err, serial)
		}
	}
}

// tryRun starts zksim like startRun but returns run's error when it does
// not get to serve.
func tryRun(t *testing.T, args ...string) (*started, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, func(string) string { return "" }, pw, io.Discard)
		pw.Close()
		done <- err
	}()
	s := &started{cancel: cancel, done: done, rest: make(chan []string, 1)}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		s.lines = append(s.lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "serving ") {
			go func() {
				var rest []string
				for sc.Scan() {
					rest = append(rest, sc.Text())
				}
				s.rest <- rest
			}()
			t.Cleanup(func() { s.stop(t) })
			return s, nil
		}
	}
	cancel()
	if err := <-done; err != nil {
		return nil, err
	}
	return nil, errors.New("run returned without serving")
}

// TestRunPortTaken: a port in use fails the run with the device and what
// to do, and leaves nothing listening.
func TestRunPortTaken(t *testing.T) {
	base := servicetest.FreePortRange(t, 3)
	busy, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+2))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	err = run(t.Context(), []string{"--listen", "127.0.0.1:" + strconv.Itoa(base), "--devices", "3", "--users", "2", "--records", "5"},
		func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "device 2 (SIM0003) cannot listen on 127.0.0.1:"+strconv.Itoa(base+2)) ||
		!strings.Contains(err.Error(), "choose another --listen port") {
		t.Fatalf("run = %v, want an error naming device 2 and its port", err)
	}
	for p := base; p < base+2; p++ {
		if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), time.Second); err == nil {
			conn.Close()
			t.Errorf("port %d still served after the failed start", p)
		}
	}
}

func TestRunHelp(t *testing.T) {
	var stderr strings.Builder
	if err := run(t.Context(), []string{"-h"}, func(string) string { return "" }, io.Discard, &stderr); err != nil {
		t.Fatalf("run -h = %v, want nil", err)
	}
	for _, flagName := range []string{"-listen", "-devices", "-punch-rate", "-fleet-file", "-config", "ZKSIM_"} {
		if !strings.Contains(stderr.String(), flagName) {
			t.Errorf("usage does not mention %s", flagName)
		}
	}
}

func TestRunInvalid(t *testing.T) {
	err := run(t.Context(), []string{"--devices", "0"}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "devices 0: want at least 1") {
		t.Fatalf("run = %v, want the settings error", err)
	}
}
