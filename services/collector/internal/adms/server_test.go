package adms_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/adms"
	"github.com/punchflow/punchflow/services/collector/internal/admssim"
	"github.com/punchflow/punchflow/services/collector/internal/jstest"
)

type harness struct {
	env *jstest.Env
	srv *adms.Server
	reg *prometheus.Registry
	url string
}

func newHarness(t *testing.T, cfg adms.Config) *harness {
	t.Helper()
	env := jstest.Start(t, true)
	if cfg.Devices == nil {
		cfg.Devices = []adms.Device{{Serial: "ADMS001", Site: "hq", TimeZone: "Europe/Berlin"}, {Serial: "ADMS002", Site: "plant"}}
	}
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = 2 * time.Second
	}
	reg := prometheus.NewRegistry()
	srv, err := adms.New(cfg, adms.Deps{JS: env.JS, DLQ: env.DLQ, KV: env.KV, Metrics: env.Metrics, Registerer: reg, Log: env.Log})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Wait() })
	return &harness{env: env, srv: srv, reg: reg, url: hs.URL}
}

// device returns a simulated device with fast timing, running until the
// test ends.
func (h *harness) device(t *testing.T, cfg admssim.Config) *admssim.Device {
	t.Helper()
	cfg.URL = h.url
	if cfg.Delay == 0 {
		cfg.Delay = 20 * time.Millisecond
	}
	if cfg.ErrorDelay == 0 {
		cfg.ErrorDelay = 20 * time.Millisecond
	}
	d := admssim.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

func punches(n int, start time.Time) []admssim.Punch {
	var out []admssim.Punch
	for i := 0; i < n; i++ {
		out = append(out, admssim.Punch{PIN: fmt.Sprintf("%05d", i%40), Time: start.Add(time.Duration(i) * 7 * time.Minute), Status: i % 2, Verify: 15})
	}
	return out
}

func waitSynced(t *testing.T, d *admssim.Device) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.WaitSynced(ctx); err != nil {
		t.Fatalf("device not synced: %v (pending %d, stats %+v)", err, d.Pending(), d.Stats())
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

var day = time.Date(2026, 4, 1, 7, 0, 0, 0, time.UTC)

func TestHandshakeAnswersOptionsAndStamps(t *testing.T) {
	h := newHarness(t, adms.Config{Delay: 7 * time.Second, ErrorDelay: 45 * time.Second})
	get := func() string {
		resp, err := http.Get(h.url + "/iclock/cdata?SN=ADMS001&options=all&pushver=2.4.1&language=69")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Date") == "" {
			t.Fatalf("handshake %d %v", resp.StatusCode, resp.Header)
		}
		return string(b)
	}
	first := get()
	_, off := time.Now().In(mustLoc(t, "Europe/Berlin")).Zone()
	for _, want := range []string{"GET OPTION FROM: ADMS001\n", "ATTLOGStamp=None\n", "OPERLOGStamp=None\n", "ATTPHOTOStamp=None\n",
		"ErrorDelay=45\n", "Delay=7\n", "TransInterval=1\n", "TransFlag=TransData AttLog OpLog\n", "Realtime=1\n",
		fmt.Sprintf("TimeZone=%d\n", off/3600), "ServerVer=2.4.1\n"} {
		if !strings.Contains(first, want) {
			t.Errorf("handshake lacks %q:\n%s", want, first)
		}
	}
	post := func(query, body string) string {
		resp, err := http.Post(h.url+"/iclock/cdata?SN=ADMS001&"+query, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprint(resp.StatusCode, " ", string(b))
	}
	if got := post("table=ATTLOG&Stamp=1042", "1\t2026-04-01 08:00:00\t0\t1\t0\t0\t0\n"); got != "200 OK" {
		t.Fatalf("upload answered %q", got)
	}
	if got := post("table=OPERLOG&OpStamp=77", "OPLOG 4\t0\t2026-04-01 08:00:00\t0\t0\t0\t0\n"); got != "200 OK" {
		t.Fatalf("operlog answered %q", got)
	}
	if got := post("table=ATTLOG&Stamp=1000", ""); got != "200 OK" {
		t.Fatalf("empty upload answered %q", got)
	}
	second := get()
	if !strings.Contains(second, "ATTLOGStamp=1042\n") || !strings.Contains(second, "OPERLOGStamp=77\n") {
		t.Fatalf("stamps not kept (an older stamp must not win):\n%s", second)
	}
	// Another device has its own stamps.
	resp, err := http.Get(h.url + "/iclock/cdata?SN=ADMS002&options=all")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "ATTLOGStamp=None") || !strings.Contains(string(b), "TimeZone=0") {
		t.Fatalf("ADMS002 handshake:\n%s", b)
	}
}

func mustLoc(t *testing.T, name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestUnknownSerialIsRefusedLoggedAndCounted(t *testing.T) {
	h := newHarness(t, adms.Config{})
	d := h.device(t, admssim.Config{Serial: "STRANGER", Punches: punches(3, day)})
	eventually(t, "refusals", func() bool { return d.Stats().Refused >= 3 })
	if n := metricValue(t, h.reg, "punchflow_collector_adms_rejected_total", map[string]string{"reason": "unknown_serial"}); n < 3 {
		t.Fatalf("rejected metric %v", n)
	}
	if d.Stats().Acked != 0 || h.env.Count(t, "RAW", "") != 0 {
		t.Fatal("a refused device's punches were stored")
	}
	resp, err := http.Get(h.url + "/iclock/getrequest")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("no SN answered %d", resp.StatusCode)
	}
}

func TestPunchesLandLikePolledOnes(t *testing.T) {
	h := newHarness(t, adms.Config{})
	d := h.device(t, admssim.Config{Serial: "ADMS001", Punches: punches(250, day), BatchSize: 100})
	waitSynced(t, d)
	msgs := h.env.Msgs(t, "RAW", "raw.punch.hq.ADMS001")
	if len(msgs) != 250 {
		t.Fatalf("RAW holds %d punches, want 250", len(msgs))
	}
	p, err := proto.DecodeRawPunch(msgs[3].Data())
	if err != nil {
		t.Fatal(err)
	}
	want := proto.NewRawPunch(proto.RawPunch{Source: "adms:ADMS001", SourceKind: "adms", Site: "hq", DeviceSerial: "ADMS001",
		UserID: "00003", DeviceTime: "2026-04-01T07:21:00", DeviceTimeZone: "Europe/Berlin", VerifyMode: 15, State: 1,
		CollectedAt: p.CollectedAt, RunID: p.RunID})
	if fmt.Sprintf("%+v", p) != fmt.Sprintf("%+v", want) || msgs[3].Headers().Get(proto.HeaderMsgID) != proto.PunchID("ADMS001", "00003", "2026-04-01T07:21:00", 1) {
		t.Fatalf("punch\n got %+v\nwant %+v", p, want)
	}
	if st := d.Stats(); st.Uploads != 3 || st.Acked != 250 {
		t.Fatalf("device %+v", st)
	}
	// Realtime: a new punch is pushed at once.
	d.Punch(admssim.Punch{PIN: "77", Time: day.Add(48 * time.Hour), Status: 0, Verify: 1})
	eventually(t, "the live punch", func() bool { return h.env.Count(t, "RAW", "") == 251 })
}

func TestResentUploadAddsNoDuplicates(t *testing.T) {
	h := newHarness(t, adms.Config{})
	// The answers of the first two uploads are lost after the server
	// stored them: the device sends the same batches again.
	d := h.device(t, admssim.Config{Serial: "ADMS001", Punches: punches(300, day), BatchSize: 120, LoseResponses: 2})
	waitSynced(t, d)
	if st := d.Stats(); st.Resends != 2 || st.Uploads != 5 {
		t.Fatalf("device %+v, want 2 resends among 5 uploads", st)
	}
	msgs := h.env.Msgs(t, "RAW", "")
	ids := map[string]bool{}
	for _, m := range msgs {
		id := m.Headers().Get(proto.HeaderMsgID)
		if ids[id] {
			t.Fatalf("punch %s stored twice", id)
		}
		ids[id] = true
	}
	if len(ids) != 300 {
		t.Fatalf("RAW holds %d distinct punches, want 300", len(ids))
	}
	// A device restarted with its whole log and the server's stamp sends
	// nothing old; one that lost the stamp (a new server) sends all again,
	// and still nothing is stored twice.
	d2 := h.device(t, admssim.Config{Serial: "ADMS001", Punches: punches(300, day)})
	waitSynced(t, d2)
	if st := d2.Stats(); st.Uploads != 0 {
		t.Fatalf("restarted device uploaded %d times", st.Uploads)
	}
	if err := h.env.KV.Delete(context.Background(), adms.StateKey("ADMS001")); err != nil {
		t.Fatal(err)
	}
	d3 := h.device(t, admssim.Config{Serial: "ADMS001", Punches: punches(300, day)})
	waitSynced(t, d3)
	if st := d3.Stats(); st.Acked != 300 {
		t.Fatalf("device without stamp %+v", st)
	}
	if n := h.env.Count(t, "RAW", ""); n != 300 {
		t.Fatalf("RAW holds %d after the full resend, want 300", n)
	}
}

func TestOKOnlyAfterJetStreamAcknowledged(t *testing.T) {
	h := newHarness(t, adms.Config{AckTimeout: 300 * time.Millisecond})
	ctx := context.Background()
	// RAW is gone (an outage): uploads cannot be stored.
	if err := h.env.JS.DeleteStream(ctx, "RAW"); err != nil {
		t.Fatal(err)
	}
	d := h.device(t, admssim.Config{Serial: "ADMS002", Punches: punches(40, day), ErrorDelay: 50 * time.Millisecond})
	eventually(t, "failed uploads", func() bool { return d.Stats().Failures >= 3 })
	if st := d.Stats(); st.Acked != 0 || d.Pending() != 40 {
		t.Fatalf("device %+v pending %d: an upload was acknowledged without storage", st, d.Pending())
	}
	// RAW is back: the device's retries go through.
	if err := topology.Ensure(ctx, h.env.JS, h.env.Topo); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, d)
	if n := h.env.Count(t, "RAW", ""); n != 40 {
		t.Fatalf("RAW holds %d, want 40", n)
	}
}

func TestBadLinesGoToTheDeadLetterStream(t *testing.T) {
	h := newHarness(t, adms.Config{})
	ps := punches(5, day)
	ps = append(ps[:2], append([]admssim.Punch{{Raw: "99\tnot a time\t0\t1"}, {Raw: "98\t2026-04-01 09:00:00\tout\t1"}}, ps[2:]...)...)
	d := h.device(t, admssim.Config{Serial: "ADMS001", Punches: ps})
	waitSynced(t, d)
	if n := h.env.Count(t, "RAW", ""); n != 5 {
		t.Fatalf("RAW holds %d, want the 5 good punches", n)
	}
	dl := h.env.Msgs(t, "DLQ", "")
	if len(dl) != 2 {
		t.Fatalf("DLQ holds %d, want 2", len(dl))
	}
	got, err := proto.DeadLetterFromHeader(dl[0].Headers())
	if err != nil {
		t.Fatal(err)
	}
	if string(dl[0].Data()) != "99\tnot a time\t0\t1" || got.SourceLine != 3 || got.SourceFile != "adms:ADMS001/ATTLOG" ||
		got.ReasonCode != proto.ReasonBadLine || !strings.Contains(got.Reason, `time "not a time"`) || got.OriginalSubject != "raw.punch.hq.ADMS001" {
		t.Fatalf("dead letter %+v body %q", got, dl[0].Data())
	}
	if n := metricValue(t, h.reg, "punchflow_collector_adms_punches_total", map[string]string{"outcome": "dead_lettered"}); n != 2 {
		t.Fatalf("dead_lettered metric %v", n)
	}
}

func TestCommandsInfoAndCheck(t *testing.T) {
	h := newHarness(t, adms.Config{HeartbeatEvery: 50 * time.Millisecond})
	d := h.device(t, admssim.Config{Serial: "ADMS001", Punches: punches(10, day), Firmware: "ZAM180-NF-Ver1.1.17", Users: 42, Capacity: 1000})
	waitSynced(t, d)
	// INFO is queued at the first handshake and answered.
	ctx := context.Background()
	var view adms.DeviceView
	eventually(t, "the INFO result", func() bool {
		vs, err := h.srv.Devices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		view = vs[0]
		return len(view.State.Results) == 1
	})
	if r := view.State.Results[0]; r.Command.Command != "INFO" || r.Return != 0 || view.State.Info["FWVersion"] != "ZAM180-NF-Ver1.1.17" ||
		view.State.Info["DeviceName"] != "SpeedFace-V5L" || view.State.Info["MaxAttLogCount"] != "1000" {
		t.Fatalf("after INFO: %+v", view.State)
	}
	// CHECK, queued through the admin API, makes the device handshake again.
	admin := httptest.NewServer(h.srv.AdminHandler())
	defer admin.Close()
	resp, err := http.Post(admin.URL+"/api/adms/devices/ADMS001/commands", "application/json", strings.NewReader(`{"command":"CHECK"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]int
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || created["id"] != 2 {
		t.Fatalf("enqueue answered %d %v", resp.StatusCode, created)
	}
	eventually(t, "the CHECK result", func() bool { return d.Stats().Handshakes >= 2 && len(d.Results()) == 2 })
	if r := d.Results()[1]; r != "ID=2&Return=0&CMD=CHECK" {
		t.Fatalf("device answered %q", r)
	}
	eventually(t, "CHECK recorded", func() bool {
		vs, _ := h.srv.Devices(ctx)
		return len(vs[0].State.Results) == 2 && len(vs[0].State.Pending) == 0
	})
	// Commands that change the device are refused.
	resp, err = http.Post(admin.URL+"/api/adms/devices/ADMS001/commands", "application/json", strings.NewReader(`{"command":"Shell rm -rf /"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("shell command answered %d", resp.StatusCode)
	}
	resp, err = http.Get(admin.URL + "/api/adms/devices")
	if err != nil {
		t.Fatal(err)
	}
	var views []map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&views)
	resp.Body.Close()
	if len(views) != 2 || views[0]["serial"] != "ADMS001" || views[1]["serial"] != "ADMS002" {
		t.Fatalf("devices %v", views)
	}
	// Heartbeats: the first contact's at once, later ones with what the
	// device said about itself.
	var hb proto.Heartbeat
	eventually(t, "a heartbeat with the device's information", func() bool {
		hbs := h.env.Msgs(t, "HEALTH", "health.device.ADMS001")
		if len(hbs) == 0 {
			return false
		}
		hb, err = proto.DecodeHeartbeat(hbs[len(hbs)-1].Data())
		return err == nil && hb.Firmware != ""
	})
	if hb.Kind != proto.HeartbeatDevice || hb.Site != "hq" || !hb.Reachable || hb.Firmware != "ZAM180-NF-Ver1.1.17" ||
		hb.Users != 42 || hb.RecordCapacity != 1000 || hb.Records != 10 || hb.CapacityUsed != 0.01 {
		t.Fatalf("heartbeat %+v", hb)
	}
}
