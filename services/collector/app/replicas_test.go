package app

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/natstest"
	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/services/collector/internal/zk"
	"github.com/punchflow/punchflow/services/collector/internal/zksim"
)

// TestReplicasSurviveAKill runs three collectors on one fleet of six polled
// and six live simulated devices, each device refusing a second session.
// Replica r0 starts first and takes three live devices (live devices stay
// held); then r1 and r2 join. r0 is then killed: its network is cut, so
// nothing it would still send reaches NATS, and only later is it stopped.
// Its devices are not orphaned: after the lease, r1 and r2 serve all twelve
// (every polled device is polled again, and a punch on every live device
// reaches RAW), and no device ever saw two sessions at once, although r0
// kept running cut off for longer than the lease (it must give its devices
// up by itself before they are handed to the others).
func TestReplicasSurviveAKill(t *testing.T) {
	ns := natstest.Run(t)
	var polled, live []*zksim.Device
	for i := range 6 {
		polled = append(polled, startSim(t, zksim.Config{Seed: int64(60 + i), Records: 50, Faults: zksim.Faults{OneSession: zksim.SessionsRefuse}}))
		live = append(live, startSim(t, zksim.Config{Seed: int64(70 + i), Records: 50, Faults: zksim.Faults{OneSession: zksim.SessionsRefuse}}))
	}
	fleetFile := writeFleet(t, append(append([]*zksim.Device{}, polled...), live...), "")
	// Mark the live devices: the fleet file lists them after the polled ones.
	markLive(t, fleetFile, live)
	const lease = 2 * time.Second
	var replicas []*replica
	var proxies []*proxy
	start := func(i int) {
		p := startProxy(t, ns.Addr().String())
		r := startCollector(t, fmt.Sprintf("r%d", i), "--nats-url", p.URL(), "--js-memory", "--fleet", fleetFile,
			"--fleet-lease", lease.String(), "--fleet-concurrency", "2", "--fleet-max-live", "3", "--fleet-replica", fmt.Sprintf("r%d", i),
			"--fleet-backoff-base", "100ms")
		r.waitReady(t)
		replicas, proxies = append(replicas, r), append(proxies, p)
	}
	start(0)
	waitFor(t, 20*time.Second, "r0 holds three live devices", func() bool { return liveSessions(replicas[0]) == 3 })
	start(1)
	start(2)

	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	waitAllPolled(t, js, polled, begin, 2, 30*time.Second)
	waitFor(t, 20*time.Second, "every live device held", func() bool {
		return liveSessions(replicas[0])+liveSessions(replicas[1])+liveSessions(replicas[2]) == 6
	})

	proxies[0].Kill()
	killed := time.Now()
	time.Sleep(lease + time.Second) // r0 lives on, cut off, past the lease
	// Cut off from NATS, its drain may fail: only its return matters.
	if err := replicas[0].Stop(15 * time.Second); errors.Is(err, servicetest.ErrStillRunning) {
		t.Fatalf("the killed collector's Run did not return: %v", err)
	}

	waitAllPolled(t, js, polled, killed, 3, 30*time.Second)
	waitFor(t, 20*time.Second, "r1 and r2 hold all six live devices", func() bool {
		return liveSessions(replicas[1])+liveSessions(replicas[2]) == 6
	})
	for i, d := range live {
		if _, err := d.Punch("1001", zk.StateCheckOut, 1); err != nil {
			t.Fatal(err)
		}
		subj := "raw.punch.hq." + d.Config().SerialNumber
		waitFor(t, 10*time.Second, fmt.Sprintf("the punch on live device %d reaches RAW", i), func() bool {
			return streamSubjects(t, js, "RAW", subj)[subj] == 51
		})
	}
	for _, d := range append(polled, live...) {
		if st := d.Stats(); st.Refused != 0 {
			t.Errorf("device %s refused %d sessions: two replicas held it at once", d.Config().SerialNumber, st.Refused)
		}
		if !d.Enabled() {
			t.Errorf("device %s left disabled", d.Config().SerialNumber)
		}
	}
	raw := streamSubjects(t, js, "RAW", "raw.>")
	for _, d := range polled {
		if n := raw["raw.punch.hq."+d.Config().SerialNumber]; n != 50 {
			t.Errorf("device %s: %d punches in RAW, want 50", d.Config().SerialNumber, n)
		}
	}
	if info := streamSubjects(t, js, "FLEET", "fleet.>"); len(info) != 12 {
		t.Errorf("fleet stream holds %d subjects, want one per device: %v", len(info), info)
	}
	if !strings.Contains(replicas[0].Logs.String(), "lease lost") {
		t.Errorf("r0 did not report losing its leases")
	}
}

// markLive rewrites the fleet file so that the given devices are live.
func markLive(t *testing.T, path string, live []*zksim.Device) {
	t.Helper()
	b, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := b
	for _, d := range live {
		entry := "  - serial: " + d.Config().SerialNumber + "\n"
		s = strings.Replace(s, entry, entry+"    mode: live\n", 1)
	}
	if err := writeFile(path, s); err != nil {
		t.Fatal(err)
	}
}

// liveSessions counts the live sessions a replica has open, from its logs.
func liveSessions(r *replica) int {
	s := r.Logs.String()
	return strings.Count(s, `"msg":"live session started"`) - strings.Count(s, `"msg":"live session ended"`) -
		strings.Count(s, `"msg":"live session stopped"`)
}

// waitAllPolled waits until every device has at least n successful
// heartbeats observed after since.
func waitAllPolled(t *testing.T, js jetstream.JetStream, devs []*zksim.Device, since time.Time, n int, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("every device polled %d times since %v", n, since.Format(time.TimeOnly)), func() bool {
		hbs := heartbeatsAfter(t, js, since)
		for _, d := range devs {
			ok := 0
			for _, hb := range hbs[d.Config().SerialNumber] {
				if hb.ErrorClass == "" {
					ok++
				}
			}
			if ok < n {
				return false
			}
		}
		return true
	})
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
