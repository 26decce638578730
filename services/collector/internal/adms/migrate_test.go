package adms_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/adms"
	"github.com/punchflow/punchflow/services/collector/internal/admssim"
	"github.com/punchflow/punchflow/services/collector/internal/fleet"
	"github.com/punchflow/punchflow/services/collector/internal/zksim"
)

// A device read by the polling fleet is switched to ADMS push: it pushes
// its whole log (the server has no stamp for it yet) plus new punches. The
// punches polled before land on the same subject with the same ids, so
// RAW holds every punch once.
func TestDeviceMovingFromPollingToPushAddsNoDuplicates(t *testing.T) {
	h := newHarness(t, adms.Config{Devices: []adms.Device{{Serial: "SIM0007", Site: "hq", TimeZone: "UTC"}}})
	zk, err := zksim.Start(zksim.Config{Seed: 7, Records: 400, SerialNumber: "SIM0007"})
	if err != nil {
		t.Fatal(err)
	}
	defer zk.Close()
	host, port, err := net.SplitHostPort(zk.Addr())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	fl, err := fleet.New(fleet.Config{Devices: []fleet.Device{{Serial: "SIM0007", Host: host, Port: p, Site: "hq", TimeZone: "UTC", Location: time.UTC}}, Timeout: 2 * time.Second},
		fleet.Deps{JS: h.env.JS, NC: h.env.NC, KV: h.env.KV, DLQ: h.env.DLQ, Metrics: h.env.Metrics, Log: h.env.Log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sum, err := fl.SyncOnce(ctx)
	if err != nil || sum.Published != 400 {
		t.Fatalf("poll %+v %v", sum, err)
	}
	polled := map[string]bool{}
	for _, m := range h.env.Msgs(t, "RAW", "") {
		polled[m.Headers().Get(proto.HeaderMsgID)] = true
	}

	// The same device now pushes its log, and punches on.
	var log []admssim.Punch
	for _, r := range zk.Attendance() {
		log = append(log, admssim.Punch{PIN: r.UserID, Time: r.DeviceTime, Status: r.State, Verify: r.VerifyMode, WorkCode: r.WorkCode})
	}
	d := h.device(t, admssim.Config{Serial: "SIM0007", Punches: log, BatchSize: 150})
	last := log[len(log)-1].Time
	for i := range 5 {
		d.Punch(admssim.Punch{PIN: "1", Time: last.Add(time.Duration(i+1) * time.Hour), Status: i % 2, Verify: 1})
	}
	waitSynced(t, d)
	if st := d.Stats(); st.Acked != 405 {
		t.Fatalf("device %+v", st)
	}
	msgs := h.env.Msgs(t, "RAW", "")
	if len(msgs) != 405 {
		t.Fatalf("RAW holds %d punches after the move, want 400 polled + 5 new", len(msgs))
	}
	for _, m := range msgs[:400] {
		if !polled[m.Headers().Get(proto.HeaderMsgID)] {
			t.Fatal("RAW changed under the polled punches")
		}
	}
	for _, m := range msgs[400:] {
		if m.Subject() != "raw.punch.hq.SIM0007" || polled[m.Headers().Get(proto.HeaderMsgID)] {
			t.Fatalf("new punch %s %s", m.Subject(), m.Headers().Get(proto.HeaderMsgID))
		}
	}
}
