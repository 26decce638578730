package app

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/natstest"
	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
)

// replica is one healthwatch started through Run.
type replica struct{ *servicetest.Running }

// startReplica runs healthwatch with args against ns and waits for /readyz.
// When the test fails, its cleanup prints the end of the replica's log.
func startReplica(t testing.TB, name string, ns *server.Server, args ...string) *replica {
	t.Helper()
	all := append([]string{"--nats-url", ns.ClientURL(), "--log-format", "json", "--log-level", "debug",
		"--shutdown-timeout", "5s", "--js-memory"}, args...)
	r := &replica{servicetest.Start(t, name, Run, all, func(string) string { return "" })}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- %s logs (last 6KB)\n%s", name, servicetest.Tail(r.Logs.String(), 6<<10))
		}
	})
	r.WaitReady(t, 30*time.Second)
	return r
}

// stop cancels the replica and checks that Run returned cleanly.
func (r *replica) stop(t testing.TB) {
	t.Helper()
	if err := r.Stop(20 * time.Second); err != nil {
		t.Errorf("%s: %v", r.Name, err)
	}
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func getJSON(t testing.TB, url string, v any) error {
	t.Helper()
	code, body := get(t, url)
	if code != http.StatusOK {
		return fmt.Errorf("%s: %d %s", url, code, body)
	}
	return json.Unmarshal([]byte(body), v)
}

func writePolicy(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// fleetSim publishes heartbeats the way the collector does.
type fleetSim struct {
	t  testing.TB
	js jetstream.JetStream
	nc *nats.Conn
	n  int
}

func newFleetSim(t testing.TB, ns *server.Server) *fleetSim {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &fleetSim{t: t, js: js, nc: nc}
}

// session is one device session's outcome.
type session struct {
	reachable bool
	class     string
	latencyMS float64
	used      float64
	offset    time.Duration
	records   int
}

var good = session{reachable: true, latencyMS: 30, used: 0.3, records: 30000}

func (f *fleetSim) publish(serial, site string, at time.Time, s session) {
	f.t.Helper()
	f.n++
	hb := proto.Heartbeat{Source: serial, Kind: proto.HeartbeatDevice, Site: site, Address: "10.0.0.1:4370",
		ObservedAt: at, RunID: fmt.Sprintf("run-%s-%d", serial, f.n), Reachable: s.reachable, ErrorClass: s.class,
		LatencyMS: s.latencyMS, DurationMS: s.latencyMS * 4, Firmware: "Ver 6.60 Apr 28 2020"}
	if s.class == proto.ErrorClassTimeout {
		hb.Error = "read udp 10.0.0.1:4370: i/o timeout"
	}
	if s.reachable && s.class != proto.ErrorClassUnauthorized {
		hb.Users, hb.Records, hb.RecordCapacity = 120, s.records, 100000
		if s.used > 0 {
			hb.Records = int(s.used * 100000)
			hb.CapacityUsed = s.used
		}
		hb.ClockOffsetMS = s.offset.Milliseconds()
	}
	hb = proto.NewHeartbeat(hb)
	data, err := proto.Encode(&hb)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := f.js.Publish(ctx, hb.Subject(), data, jetstream.WithMsgID(hb.ID)); err != nil {
		f.t.Fatalf("publish heartbeat %s: %v", serial, err)
	}
}

// hook is a Standard Webhooks receiver that records the events of every
// alert it gets, after checking the signature.
type hook struct {
	*httptest.Server
	mu       sync.Mutex
	messages []notify.Message
	ids      []string
	secret   string
	failing  bool
	t        *testing.T
}

func newHook(t *testing.T, secret string) *hook {
	h := &hook{secret: secret, t: t}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		failing := h.failing
		h.mu.Unlock()
		if failing {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if err := verifySignature(secret, r.Header, body); err != nil {
			t.Errorf("webhook signature: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev struct {
			Type string         `json:"type"`
			Data notify.Message `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.messages = append(h.messages, ev.Data)
		h.ids = append(h.ids, r.Header.Get("webhook-id"))
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hook) setFailing(v bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failing = v
}

func (h *hook) got() []notify.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]notify.Message(nil), h.messages...)
}

// events lists "device condition raised|resolved" for every event received.
func (h *hook) events() []string {
	var out []string
	for _, m := range h.got() {
		for _, e := range m.Events {
			dir := "raised"
			if e.Resolved {
				dir = "resolved"
			}
			out = append(out, e.Device+" "+string(e.Condition)+" "+dir)
		}
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// smtpSink is a minimal SMTP receiver for end-to-end tests.
type smtpSink struct {
	ln    net.Listener
	mu    sync.Mutex
	mails []string
}

func startSMTPSink(t *testing.T) *smtpSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpSink{ln: ln}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

func (s *smtpSink) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	fmt.Fprint(c, "220 sink ready\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch strings.ToUpper(strings.Fields(line + " x")[0]) {
		case "EHLO":
			fmt.Fprint(c, "250-sink\r\n250 8BITMIME\r\n")
		case "DATA":
			fmt.Fprint(c, "354 go ahead\r\n")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil || l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			s.mu.Lock()
			s.mails = append(s.mails, b.String())
			s.mu.Unlock()
			fmt.Fprint(c, "250 queued\r\n")
		case "QUIT":
			fmt.Fprint(c, "221 bye\r\n")
			return
		default:
			fmt.Fprint(c, "250 ok\r\n")
		}
	}
}

func (s *smtpSink) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.mails...)
}

// verifySignature checks a Standard Webhooks signature from the
// specification: base64 HMAC-SHA256 of "id.timestamp.body" keyed by the
// secret's bytes after whsec_, within five minutes of now.
func verifySignature(secret string, h http.Header, body []byte) error {
	id, ts, sig := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || id == "" {
		return fmt.Errorf("webhook-id %q webhook-timestamp %q", id, ts)
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s is outside the tolerance", ts)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(sig) {
		if v, got, _ := strings.Cut(s, ","); v == "v1" && hmac.Equal([]byte(got), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("signature %q does not verify", sig)
}

// amReceiver is an Alertmanager API v2 endpoint that records every alert
// posted to it.
type amReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	alerts [][]amAlert
}

type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Received     time.Time         `json:"-"`
}

func newAMReceiver(t *testing.T) *amReceiver {
	a := &amReceiver{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/alerts" {
			t.Errorf("alertmanager got %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		var list []amAlert
		if err := json.NewDecoder(r.Body).Decode(&list); err != nil {
			t.Errorf("alertmanager body: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for i := range list {
			list[i].Received = time.Now()
		}
		a.mu.Lock()
		a.alerts = append(a.alerts, list)
		a.mu.Unlock()
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *amReceiver) posts() [][]amAlert {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([][]amAlert(nil), a.alerts...)
}

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func natsServer(t testing.TB) *server.Server { return natstest.Run(t) }

// provision creates the platform's streams and buckets (in memory) the way
// a starting service does, so a test can publish before healthwatch runs.
func provision(t testing.TB, ns *server.Server, args ...string) {
	t.Helper()
	var c topology.Config
	fs := flag.NewFlagSet("topology", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(append([]string{"--js-memory"}, args...)); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := topology.Ensure(ctx, js, c); err != nil {
		t.Fatal(err)
	}
}
