package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/punchflow/punchflow/platform/cli"
	"github.com/punchflow/punchflow/platform/natstest"
	"github.com/punchflow/punchflow/platform/servicetest"
	collector "github.com/punchflow/punchflow/services/collector/app"
	healthwatch "github.com/punchflow/punchflow/services/healthwatch/app"
)

// hookEvent is what this test reads of healthwatch's signed webhook payload.
type hookEvent struct {
	Device    string `json:"device"`
	Condition string `json:"condition"`
	Resolved  bool   `json:"resolved"`
}

type hookReceiver struct {
	mu     sync.Mutex
	events []hookEvent
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Data struct {
			Events []hookEvent `json:"events"`
		} `json:"data"`
	}
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.events = append(h.events, body.Data.Events...)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// count returns how many disconnected raises and resolutions device got.
func (h *hookReceiver) count(device string) (raised, resolved int, all []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.events {
		all = append(all, fmt.Sprintf("%s %s resolved=%v", e.Device, e.Condition, e.Resolved))
		if e.Device != device || e.Condition != "disconnected" {
			continue
		}
		if e.Resolved {
			resolved++
		} else {
			raised++
		}
	}
	return raised, resolved, all
}

// startZksim runs the device simulator command on addr until it is killed.
func startZksim(t *testing.T, bin, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "--listen", addr, "--devices", "1", "--users", "5", "--records", "20")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	servicetest.WaitFor(t, "zksim to listen on "+addr, 30*time.Second, func() (bool, string) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
	return cmd
}

// TestDeviceDisconnectAlertEndToEnd drives healthwatch from real device
// sessions: the collector polls a device served by the zksim command; the
// device process is killed (the device stops answering), healthwatch sends
// one disconnected alert within the configured window, the device comes
// back, and healthwatch sends one resolved notice.
func TestDeviceDisconnectAlertEndToEnd(t *testing.T) {
	ns := natstest.Run(t)
	work := t.TempDir()
	bin := filepath.Join(work, "zksim")
	build := exec.Command("go", "build", "-o", bin, "github.com/punchflow/punchflow/services/collector/cmd/zksim")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build zksim: %v\n%s", err, out)
	}
	addr := servicetest.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	dev := startZksim(t, bin, addr)

	fleetFile := filepath.Join(work, "fleet.yaml")
	if err := os.WriteFile(fleetFile, []byte(fmt.Sprintf(`defaults: {site: hq, time_zone: UTC, poll_interval: 300ms}
devices:
  - {serial: SIM0001, address: 127.0.0.1, port: %s, transport: tcp}
`, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	hooks := &hookReceiver{}
	srv := httptest.NewServer(hooks)
	defer srv.Close()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	policyFile := filepath.Join(work, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(fmt.Sprintf(`time_zone: UTC
thresholds: {interval: 500ms, disconnected_after: 4, raise_after: 1, clear_after: 1}
reports: {times: []}
alerts: {group_wait: 200ms}
devices:
  - {serial: SIM0001, site: hq, name: Simulated door}
teams:
  support: {channels: [hooks], alerts: [all]}
channels:
  hooks: {type: webhook, url: %s/hook, secret: whsec_%s, retry: {initial: 50ms, max: 200ms, give_up_after: 5s}}
`, srv.URL, base64.StdEncoding.EncodeToString(secret))), 0o600); err != nil {
		t.Fatal(err)
	}

	common := []string{"--nats-url", ns.ClientURL(), "--log-format", "json", "--shutdown-timeout", "5s"}
	var procs []*servicetest.Running
	for _, s := range []struct {
		name string
		run  cli.RunFunc
		args []string
	}{
		{"collector", collector.Run, []string{"--fleet", fleetFile, "--fleet-backoff-base", "100ms", "--fleet-backoff-max", "300ms",
			"--fleet-breaker-failures", "1000", "--fleet-timeout", "500ms"}},
		{"healthwatch", healthwatch.Run, []string{"--policy", policyFile, "--evaluate-every", "100ms"}},
	} {
		procs = append(procs, servicetest.Start(t, s.name, s.run, append(append([]string(nil), common...), s.args...), func(string) string { return "" }))
	}
	defer func() {
		if t.Failed() {
			for _, p := range procs {
				t.Logf("---- %s logs (last 4KB)\n%s", p.Name, servicetest.Tail(p.Logs.String(), 4096))
			}
		}
	}()

	// The device is polled; no alert yet.
	servicetest.WaitFor(t, "a successful device session", 30*time.Second, func() (bool, string) {
		return strings.Contains(procs[0].Logs.String(), `"SIM0001"`), "no session logged"
	})
	time.Sleep(time.Second)
	if raised, _, all := hooks.count("SIM0001"); raised != 0 {
		t.Fatalf("disconnected raised while the device answers: %v", all)
	}

	// The device stops answering.
	_ = dev.Process.Kill()
	_ = dev.Wait()
	down := time.Now()
	servicetest.WaitFor(t, "the disconnected alert", 30*time.Second, func() (bool, string) {
		raised, _, all := hooks.count("SIM0001")
		return raised > 0, strings.Join(all, "; ")
	})
	t.Logf("disconnected alert %v after the device stopped answering (window 4 × 500ms)", time.Since(down).Round(time.Millisecond))

	// It comes back on the same address.
	startZksim(t, bin, addr)
	servicetest.WaitFor(t, "the resolved notice", 60*time.Second, func() (bool, string) {
		_, resolved, all := hooks.count("SIM0001")
		return resolved > 0, strings.Join(all, "; ")
	})
	time.Sleep(2 * time.Second) // let any duplicate arrive
	if raised, resolved, all := hooks.count("SIM0001"); raised != 1 || resolved != 1 {
		t.Fatalf("disconnected notices: %d raised, %d resolved, want exactly one each; all events: %v", raised, resolved, all)
	}

	for _, p := range procs {
		if err := p.Stop(20 * time.Second); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
	}
}
