// Package adms is the collector's endpoint for ZKTeco devices that push
// (ADMS, "PUSH SDK", /iclock/*): the device is the HTTP client, configured
// with the collector's address. It serves the handshake
// (GET /iclock/cdata: options and the per-device stamps), uploads (POST
// /iclock/cdata?table=ATTLOG: punches; OPERLOG, ATTPHOTO and device
// information are acknowledged), the command queue (GET /iclock/getrequest:
// "C:<id>:<command>" lines, at least INFO and CHECK) and command results
// (POST /iclock/devicecmd).
//
// Only serial numbers on the allow-list are served; any other is refused
// with 403, logged and counted. An upload is answered OK only after
// JetStream acknowledged every punch in it (and the dead-lettering of every
// unreadable line); otherwise the answer is an error status and the device
// keeps the rows and sends them again. Punches are published exactly as the
// polling fleet publishes them (same subject, same id from serial, user id,
// device time and state), so a device that moves from polling to push, or
// sends an upload twice, adds no duplicates.
//
// State shared by replicas (stamps, command queue, device information)
// lives in the checkpoint bucket under adms.<serial>.
package adms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/punchflow/punchflow/platform/metrics"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/publish"
)

// Device is an allowed device.
type Device struct {
	Serial string `yaml:"serial" json:"serial"`
	Site   string `yaml:"site" json:"site"`
	// TimeZone is the IANA zone the device's clock is set to: stamped on
	// its punches and sent as the TimeZone option.
	TimeZone string `yaml:"time_zone" json:"time_zone,omitempty"`
}

// Config configures the endpoint. Zero values select the defaults named.
type Config struct {
	// Devices is the allow-list.
	Devices []Device
	// Delay is the device's command poll interval (option Delay; default
	// 10 s) and ErrorDelay its wait after a failed request (option
	// ErrorDelay; default 30 s). Both are sent in whole seconds.
	Delay, ErrorDelay time.Duration
	// Realtime (option Realtime=1, default on unless Batched) makes the
	// device push each punch as it happens; Batched sends Realtime=0 and
	// the device uploads every TransInterval minutes (default 1) and at
	// TransTimes (default "00:00;14:05").
	Batched       bool
	TransInterval int
	TransTimes    string
	// TransFlag lists what the device uploads (default "TransData AttLog
	// OpLog").
	TransFlag string
	// ServerVer and PushProtVer are announced in the handshake (default
	// 2.4.1).
	ServerVer, PushProtVer string
	// MaxBody bounds an upload (default 16 MiB).
	MaxBody int64
	// AckTimeout bounds the wait for JetStream's acknowledgements of one
	// upload before the device is told to send it again (default 10 s).
	AckTimeout time.Duration
	// HeartbeatEvery is the most often a device heartbeat is published per
	// device (default 1 min); the first contact publishes one at once.
	HeartbeatEvery time.Duration
	// CommandResend is how long a delivered command may stay unconfirmed
	// before it is delivered again (default 5 min); after 3 deliveries it
	// is recorded as expired.
	CommandResend time.Duration
	// NoInfo skips queueing INFO for a device whose information is not
	// known yet.
	NoInfo bool
}

func (c *Config) defaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Delay, 10*time.Second)
	def(&c.ErrorDelay, 30*time.Second)
	def(&c.AckTimeout, 10*time.Second)
	def(&c.HeartbeatEvery, time.Minute)
	def(&c.CommandResend, 5*time.Minute)
	if c.TransInterval <= 0 {
		c.TransInterval = 1
	}
	if c.TransTimes == "" {
		c.TransTimes = "00:00;14:05"
	}
	if c.TransFlag == "" {
		c.TransFlag = "TransData AttLog OpLog"
	}
	if c.ServerVer == "" {
		c.ServerVer = "2.4.1"
	}
	if c.PushProtVer == "" {
		c.PushProtVer = "2.4.1"
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 16 << 20
	}
}

// Publisher is the slice of jetstream.JetStream the endpoint publishes with.
type Publisher interface {
	publish.Publisher
	publish.SyncPublisher
}

// DeadLetterer publishes a dead letter and waits for its acknowledgement
// (dispose.Disposer).
type DeadLetterer interface {
	DeadLetter(ctx context.Context, dl proto.DeadLetter, body []byte) error
}

// Deps are what the endpoint talks to.
type Deps struct {
	JS  Publisher
	DLQ DeadLetterer
	// KV is the checkpoint bucket.
	KV      store
	Metrics *metrics.Pipeline
	// Registerer receives the endpoint's own series; nil skips them.
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Server is the ADMS endpoint. It is safe for concurrent use.
type Server struct {
	cfg     Config
	d       Deps
	devices map[string]*device
	log     *slog.Logger
	m       *admsMetrics

	bg sync.WaitGroup // heartbeats in flight

	refusedMu sync.Mutex
	refused   map[string]time.Time // unknown serial → when it was last logged
}

// device is an allowed device and what this replica knows of it.
type device struct {
	Device
	loc *time.Location

	mu        sync.Mutex
	lastSeen  time.Time
	addr      string
	lastHB    time.Time
	published int
	rejected  int
	uploads   int
	info      map[string]string
}

type admsMetrics struct {
	requests *prometheus.CounterVec
	rejected *prometheus.CounterVec
	punches  *prometheus.CounterVec
}

// New checks cfg (every serial once, a site each, time zones that exist)
// and returns the endpoint.
func New(cfg Config, d Deps) (*Server, error) {
	cfg.defaults()
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, d: d, devices: map[string]*device{}, log: d.Log.With("input", "adms")}
	var errs []error
	for i, dev := range cfg.Devices {
		switch {
		case dev.Serial == "":
			errs = append(errs, fmt.Errorf("adms device %d: serial is required", i+1))
			continue
		case s.devices[dev.Serial] != nil:
			errs = append(errs, fmt.Errorf("adms device %s is listed twice", dev.Serial))
			continue
		case dev.Site == "":
			errs = append(errs, fmt.Errorf("adms device %s: site is required", dev.Serial))
		}
		loc := time.UTC
		if dev.TimeZone != "" {
			l, err := time.LoadLocation(dev.TimeZone)
			if err != nil {
				errs = append(errs, fmt.Errorf("adms device %s: time_zone %q: %v", dev.Serial, dev.TimeZone, err))
			} else {
				loc = l
			}
		}
		s.devices[dev.Serial] = &device{Device: dev, loc: loc}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.m = &admsMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "punchflow", Subsystem: "collector", Name: "adms_requests_total",
			Help: "ADMS requests by endpoint and HTTP status."}, []string{"endpoint", "status"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "punchflow", Subsystem: "collector", Name: "adms_rejected_total",
			Help: "ADMS requests refused, by reason (unknown_serial, missing_serial, method, too_large)."}, []string{"reason"}),
		punches: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "punchflow", Subsystem: "collector", Name: "adms_punches_total",
			Help: "ATTLOG lines received, by outcome (published, dead_lettered)."}, []string{"outcome"}),
	}
	if d.Registerer != nil {
		for _, c := range []prometheus.Collector{s.m.requests, s.m.rejected, s.m.punches} {
			if err := d.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register adms metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Handler serves /iclock/cdata, /iclock/getrequest, /iclock/devicecmd and
// /iclock/registry.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/iclock/cdata", s.wrap("cdata", s.cdata))
	mux.HandleFunc("/iclock/getrequest", s.wrap("getrequest", s.getrequest))
	mux.HandleFunc("/iclock/devicecmd", s.wrap("devicecmd", s.devicecmd))
	mux.HandleFunc("/iclock/registry", s.wrap("registry", s.registry))
	return mux
}

// Serve listens on addr and serves the device endpoints until ctx ends,
// then stops accepting, finishes the requests in flight (within 10 s) and
// waits for the heartbeats in flight.
func (s *Server) Serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("adms: listen on %s: %w", addr, err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener is Serve on a listener the caller opened (it is closed).
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	s.log.Info("adms endpoint listening", "addr", ln.Addr().String(), "devices", len(s.devices))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("adms: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	s.bg.Wait()
	if err != nil {
		return fmt.Errorf("adms: shutdown: %w", err)
	}
	return nil
}

// Wait waits for the heartbeats in flight (for a caller that serves Handler
// itself).
func (s *Server) Wait() { s.bg.Wait() }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// wrap checks the serial against the allow-list and counts the request.
func (s *Server) wrap(endpoint string, h func(http.ResponseWriter, *http.Request, *device)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() { s.m.requests.WithLabelValues(endpoint, strconv.Itoa(sw.status)).Inc() }()
		sw.Header().Set("Content-Type", "text/plain")
		sn := r.URL.Query().Get("SN")
		if sn == "" {
			s.m.rejected.WithLabelValues("missing_serial").Inc()
			http.Error(sw, "SN is required", http.StatusBadRequest)
			return
		}
		dev := s.devices[sn]
		if dev == nil {
			s.m.rejected.WithLabelValues("unknown_serial").Inc()
			if s.logRefusal(sn) {
				s.log.Warn("refused a device that is not on the allow-list; add it to the adms devices to accept it (logged once per 10 minutes per serial)",
					"serial", sn, "endpoint", endpoint, "remote", remoteIP(r))
			}
			http.Error(sw, "unknown device", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			s.m.rejected.WithLabelValues("method").Inc()
			http.Error(sw, "use GET or POST", http.StatusMethodNotAllowed)
			return
		}
		dev.mu.Lock()
		dev.lastSeen, dev.addr = time.Now(), remoteIP(r)
		dev.mu.Unlock()
		h(sw, r, dev)
	}
}

// logRefusal reports whether a refused serial should be logged now: once
// per 10 minutes per serial, so a device polling every few seconds does not
// flood the log (the metric counts every refusal).
func (s *Server) logRefusal(serial string) bool {
	s.refusedMu.Lock()
	defer s.refusedMu.Unlock()
	if s.refused == nil {
		s.refused = map[string]time.Time{}
	}
	now := time.Now()
	if last, ok := s.refused[serial]; ok && now.Sub(last) < 10*time.Minute {
		return false
	}
	if len(s.refused) > 10000 {
		clear(s.refused) // bound the memory an address scan could take
	}
	s.refused[serial] = now
	return true
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// cdata is the handshake (GET) and every upload (POST).
func (s *Server) cdata(w http.ResponseWriter, r *http.Request, dev *device) {
	if r.Method == http.MethodGet {
		s.handshake(w, r, dev)
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	switch table := strings.ToUpper(q.Get("table")); table {
	case "ATTLOG":
		s.attlog(w, r, dev, body, q.Get("Stamp"))
	case "OPERLOG", "ATTPHOTO":
		stamp := q.Get("OpStamp")
		if table == "ATTPHOTO" {
			stamp = q.Get("PhotoStamp")
		}
		stamp = firstNonEmpty(stamp, q.Get("Stamp"))
		s.log.Debug("upload acknowledged", "device", dev.Serial, "table", table, "bytes", len(body))
		s.saveStamp(r.Context(), dev, table, stamp)
		fmt.Fprint(w, "OK")
	case "OPTIONS", "INFO", "":
		if info := ParseInfo(body); len(info) > 0 {
			s.mergeInfo(r.Context(), dev, info)
		}
		fmt.Fprint(w, "OK")
	default:
		// BIODATA, USERINFO, … are not collected; acknowledging keeps the
		// device from sending them forever.
		s.log.Debug("upload of an uncollected table acknowledged", "device", dev.Serial, "table", table, "bytes", len(body))
		fmt.Fprint(w, "OK")
	}
	s.heartbeatMaybe(r.Context(), dev)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.m.rejected.WithLabelValues("too_large").Inc()
			http.Error(w, fmt.Sprintf("upload larger than %d bytes", s.cfg.MaxBody), http.StatusRequestEntityTooLarge)
			return nil, false
		}
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return body, true
}

// handshake answers the device's options: stamps per table and timing.
func (s *Server) handshake(w http.ResponseWriter, r *http.Request, dev *device) {
	ctx := r.Context()
	st, err := updateState(ctx, s.d.KV, dev.Serial, func(st *State) bool {
		changed := false
		if st.FirstSeen.IsZero() {
			st.FirstSeen, changed = time.Now().UTC(), true
		}
		if !s.cfg.NoInfo && len(st.Info) == 0 && !st.hasPending("INFO") {
			st.NextID++
			st.Pending = append(st.Pending, Command{ID: st.NextID, Command: "INFO", QueuedAt: time.Now().UTC()})
			changed = true
		}
		return changed
	})
	if err != nil {
		s.log.Error("adms handshake: state not available; the device will retry", "device", dev.Serial, "err", err)
		http.Error(w, "state not available", http.StatusServiceUnavailable)
		return
	}
	s.log.Debug("adms handshake", "device", dev.Serial, "pushver", r.URL.Query().Get("pushver"), "stamps", st.Stamps)
	fmt.Fprint(w, s.options(dev, st))
	s.heartbeatMaybe(ctx, dev)
}

// options renders the handshake answer.
func (s *Server) options(dev *device, st State) string {
	stamp := func(table string) string {
		if v := st.Stamps[table]; v != "" {
			return v
		}
		return "None"
	}
	realtime := 1
	if s.cfg.Batched {
		realtime = 0
	}
	_, off := time.Now().In(dev.loc).Zone()
	var b strings.Builder
	fmt.Fprintf(&b, "GET OPTION FROM: %s\n", dev.Serial)
	fmt.Fprintf(&b, "ATTLOGStamp=%s\nOPERLOGStamp=%s\nATTPHOTOStamp=%s\n", stamp("ATTLOG"), stamp("OPERLOG"), stamp("ATTPHOTO"))
	fmt.Fprintf(&b, "ErrorDelay=%d\nDelay=%d\n", seconds(s.cfg.ErrorDelay), seconds(s.cfg.Delay))
	fmt.Fprintf(&b, "TransTimes=%s\nTransInterval=%d\nTransFlag=%s\n", s.cfg.TransTimes, s.cfg.TransInterval, s.cfg.TransFlag)
	fmt.Fprintf(&b, "TimeZone=%s\nRealtime=%d\nEncrypt=None\nServerVer=%s\nPushProtVer=%s\n", hours(off), realtime, s.cfg.ServerVer, s.cfg.PushProtVer)
	return b.String()
}

// seconds renders d in whole seconds, at least 1.
func seconds(d time.Duration) int { return max(1, int((d+time.Second-1)/time.Second)) }

// hours renders a zone offset in hours, with a fraction when it has one
// (India's 5.5).
func hours(offsetSec int) string {
	if offsetSec%3600 == 0 {
		return strconv.Itoa(offsetSec / 3600)
	}
	return strconv.FormatFloat(float64(offsetSec)/3600, 'f', -1, 64)
}

// attlog publishes the punches of one upload and answers OK only once
// JetStream acknowledged all of them and every unreadable line is
// dead-lettered.
func (s *Server) attlog(w http.ResponseWriter, r *http.Request, dev *device, body []byte, stamp string) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.AckTimeout)
	defer cancel()
	runID := proto.NewCorrelationID()
	recs, bad := ParseATTLOG(body)
	if s.d.Metrics != nil {
		s.d.Metrics.Received.WithLabelValues("adms_attlog").Add(float64(len(recs) + len(bad)))
	}
	batch := publish.NewBatch(s.d.JS, publish.Options{Window: 512, AckTimeout: s.cfg.AckTimeout, Budget: s.cfg.AckTimeout,
		Kind: proto.KindRawPunch, Metrics: s.d.Metrics, Log: s.log})
	trace := proto.NewTraceparent()
	now := time.Now().UTC()
	subject := proto.RawPunchSubject(dev.Site, dev.Serial)
	var failed error
	for _, rec := range recs {
		p := proto.NewRawPunch(proto.RawPunch{
			Source: "adms:" + dev.Serial, SourceKind: "adms", Site: dev.Site, DeviceSerial: dev.Serial,
			UserID: rec.PIN, DeviceTime: proto.FormatLocalTime(rec.Time), DeviceTimeZone: dev.TimeZone,
			VerifyMode: rec.Verify, State: rec.Status, WorkCode: rec.WorkCode, CollectedAt: now, RunID: runID,
		})
		m, err := publish.PunchMsg(&p, trace)
		if err != nil {
			bad = append(bad, BadLine{Line: rec.Line, Raw: string(lineOf(body, rec.Line)), Reason: err.Error()})
			continue
		}
		if err := batch.Add(ctx, m); err != nil {
			failed = err
			break
		}
	}
	if failed == nil {
		failed = batch.Wait(ctx)
	}
	for _, b := range bad {
		if failed != nil {
			break
		}
		dl := proto.DeadLetter{
			Stage: proto.StageCollect, ReasonCode: proto.ReasonBadLine,
			Reason:          fmt.Sprintf("device %s ATTLOG line %d: %s", dev.Serial, b.Line, b.Reason),
			OriginalSubject: subject, SourceFile: "adms:" + dev.Serial + "/ATTLOG", SourceLine: b.Line,
			FailedAt: now, MsgID: proto.RecordID("adms:"+dev.Serial, "ATTLOG", []byte(b.Raw)), CorrelationID: runID,
		}
		failed = s.d.DLQ.DeadLetter(ctx, dl, []byte(b.Raw))
	}
	if failed != nil {
		s.log.Warn("upload not stored; the device will send it again", "device", dev.Serial, "lines", len(recs)+len(bad), "err", failed)
		if s.d.Metrics != nil {
			s.d.Metrics.Errors.WithLabelValues(proto.ErrorClassPublish).Inc()
		}
		http.Error(w, "ERROR: not stored, send again", http.StatusServiceUnavailable)
		return
	}
	s.m.punches.WithLabelValues("published").Add(float64(len(recs)))
	s.m.punches.WithLabelValues("dead_lettered").Add(float64(len(bad)))
	dev.mu.Lock()
	dev.published += len(recs)
	dev.rejected += len(bad)
	dev.uploads++
	dev.mu.Unlock()
	s.saveStamp(r.Context(), dev, "ATTLOG", stamp)
	s.log.Debug("ATTLOG stored", "device", dev.Serial, "punches", len(recs), "bad_lines", len(bad), "stamp", stamp)
	fmt.Fprint(w, "OK")
	s.heartbeatMaybe(r.Context(), dev)
}

// lineOf returns line n (1-based) of body.
func lineOf(body []byte, n int) []byte {
	lines := strings.Split(string(body), "\n")
	if n < 1 || n > len(lines) {
		return nil
	}
	return []byte(strings.TrimRight(lines[n-1], "\r"))
}

// saveStamp records a table's stamp after an acknowledged upload. A stamp
// that cannot be written is logged: the device then sends the rows again
// after its next handshake, which adds no duplicates.
func (s *Server) saveStamp(ctx context.Context, dev *device, table, stamp string) {
	if stamp == "" {
		return
	}
	_, err := updateState(context.WithoutCancel(ctx), s.d.KV, dev.Serial, func(st *State) bool {
		if !newerStamp(st.Stamps[table], stamp) {
			return false
		}
		if st.Stamps == nil {
			st.Stamps = map[string]string{}
		}
		st.Stamps[table] = stamp
		return true
	})
	if err != nil {
		s.log.Warn("stamp not recorded", "device", dev.Serial, "table", table, "stamp", stamp, "err", err)
	}
}

func (s *Server) mergeInfo(ctx context.Context, dev *device, info map[string]string) {
	dev.mu.Lock()
	if dev.info == nil {
		dev.info = map[string]string{}
	}
	changed := false
	for k, v := range info {
		if dev.info[k] != v {
			dev.info[k], changed = v, true
		}
	}
	dev.mu.Unlock()
	if !changed {
		return
	}
	if _, err := updateState(ctx, s.d.KV, dev.Serial, func(st *State) bool { return st.mergeInfo(info) }); err != nil {
		s.log.Warn("device information not recorded", "device", dev.Serial, "err", err)
	}
}

// getrequest delivers the commands due, or OK.
func (s *Server) getrequest(w http.ResponseWriter, r *http.Request, dev *device) {
	ctx := r.Context()
	if info := ParseInfoParam(r.URL.Query().Get("INFO")); len(info) > 0 {
		s.mergeInfo(ctx, dev, info)
	}
	var cmds []Command
	st, _, err := loadState(ctx, s.d.KV, dev.Serial)
	if err == nil && len(st.Pending) > 0 {
		// Only a device with pending commands writes on a poll.
		_, err = updateState(ctx, s.d.KV, dev.Serial, func(st *State) bool {
			expired := len(st.Results)
			cmds = st.due(time.Now().UTC(), s.cfg.CommandResend, 3)
			return len(cmds) > 0 || len(st.Results) != expired
		})
	}
	if err != nil {
		s.log.Warn("adms getrequest: state not available", "device", dev.Serial, "err", err)
		cmds = nil
	}
	if len(cmds) == 0 {
		fmt.Fprint(w, "OK")
	} else {
		var b strings.Builder
		for _, c := range cmds {
			fmt.Fprintf(&b, "C:%d:%s\n", c.ID, c.Command)
		}
		fmt.Fprint(w, b.String())
		s.log.Info("adms commands delivered", "device", dev.Serial, "commands", len(cmds))
	}
	s.heartbeatMaybe(ctx, dev)
}

// devicecmd records command results.
func (s *Server) devicecmd(w http.ResponseWriter, r *http.Request, dev *device) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	results, unknown := ParseResults(body)
	if len(unknown) > 0 {
		s.log.Warn("adms devicecmd: unreadable lines", "device", dev.Serial, "lines", unknown)
	}
	info := map[string]string{}
	for _, res := range results {
		if strings.EqualFold(res.Command, "INFO") {
			for k, v := range res.Info {
				info[k] = v
			}
		}
	}
	now := time.Now().UTC()
	_, err := updateState(r.Context(), s.d.KV, dev.Serial, func(st *State) bool {
		changed := st.mergeInfo(info)
		for _, res := range results {
			if st.confirm(res, now) {
				changed = true
			}
		}
		return changed
	})
	if err != nil {
		s.log.Error("adms devicecmd: results not recorded; the device will send them again", "device", dev.Serial, "err", err)
		http.Error(w, "not recorded", http.StatusServiceUnavailable)
		return
	}
	if len(info) > 0 {
		dev.mu.Lock()
		if dev.info == nil {
			dev.info = map[string]string{}
		}
		for k, v := range info {
			dev.info[k] = v
		}
		dev.mu.Unlock()
	}
	for _, res := range results {
		s.log.Info("adms command result", "device", dev.Serial, "id", res.ID, "command", res.Command, "return", res.Return)
	}
	fmt.Fprint(w, "OK")
	s.heartbeatMaybe(r.Context(), dev)
}

// registry acknowledges PUSH 3.x registration and keeps its information.
func (s *Server) registry(w http.ResponseWriter, r *http.Request, dev *device) {
	if r.Method == http.MethodPost {
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		if info := ParseInfo(body); len(info) > 0 {
			s.mergeInfo(r.Context(), dev, info)
		}
	}
	fmt.Fprint(w, "OK")
}

// Enqueue queues a command for a device; it is delivered on the device's
// next getrequest. Commands allowed: INFO, CHECK, LOG, REBOOT, "GET OPTION
// FROM <key>" and "DATA QUERY …" (nothing that changes users or runs a
// shell).
func (s *Server) Enqueue(ctx context.Context, serial, command string) (int, error) {
	command = strings.TrimSpace(command)
	if s.devices[serial] == nil {
		return 0, fmt.Errorf("device %s is not on the adms allow-list", serial)
	}
	if !allowedCommand(command) {
		return 0, fmt.Errorf("command %q is not allowed: use INFO, CHECK, LOG, REBOOT, GET OPTION FROM <key> or DATA QUERY …", command)
	}
	var id int
	_, err := updateState(ctx, s.d.KV, serial, func(st *State) bool {
		st.NextID++
		id = st.NextID
		st.Pending = append(st.Pending, Command{ID: id, Command: command, QueuedAt: time.Now().UTC()})
		return true
	})
	return id, err
}

func allowedCommand(c string) bool {
	switch c {
	case "INFO", "CHECK", "LOG", "REBOOT":
		return true
	}
	return (strings.HasPrefix(c, "GET OPTION FROM ") || strings.HasPrefix(c, "DATA QUERY ")) && !strings.ContainsAny(c, "\r\n")
}

// DeviceView is a device as the admin API shows it.
type DeviceView struct {
	Device
	// LastSeen and Address are what this replica saw (zero when the device
	// talks to another replica).
	LastSeen time.Time `json:"last_seen,omitzero"`
	Address  string    `json:"address,omitempty"`
	State    State     `json:"state"`
}

// Devices returns every allowed device with its shared state, by serial.
func (s *Server) Devices(ctx context.Context) ([]DeviceView, error) {
	var out []DeviceView
	for _, dev := range s.devices {
		st, _, err := loadState(ctx, s.d.KV, dev.Serial)
		if err != nil {
			return nil, err
		}
		dev.mu.Lock()
		out = append(out, DeviceView{Device: dev.Device, LastSeen: dev.lastSeen, Address: dev.addr, State: st})
		dev.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Serial < out[j].Serial })
	return out, nil
}

// heartbeatMaybe publishes a device heartbeat when the last one of this
// replica is older than HeartbeatEvery, in the background.
func (s *Server) heartbeatMaybe(ctx context.Context, dev *device) {
	now := time.Now()
	dev.mu.Lock()
	if !dev.lastHB.IsZero() && now.Sub(dev.lastHB) < s.cfg.HeartbeatEvery {
		dev.mu.Unlock()
		return
	}
	dev.lastHB = now
	hb := proto.Heartbeat{
		Source: dev.Serial, Kind: proto.HeartbeatDevice, Site: dev.Site, Address: dev.addr,
		ObservedAt: now.UTC(), RunID: proto.NewCorrelationID(), Reachable: true,
		RecordsPublished: dev.published, RecordsRejected: dev.rejected,
	}
	info := dev.info
	dev.published, dev.rejected = 0, 0
	dev.mu.Unlock()
	fillInfo(&hb, info)
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		publish.Heartbeat(context.WithoutCancel(ctx), s.d.JS, hb, s.d.Metrics, s.log)
	}()
}

// fillInfo copies what the device said about itself into a heartbeat.
func fillInfo(hb *proto.Heartbeat, info map[string]string) {
	get := func(keys ...string) string {
		for _, k := range keys {
			if v := info[k]; v != "" {
				return v
			}
		}
		return ""
	}
	num := func(keys ...string) int {
		n, _ := strconv.Atoi(get(keys...))
		return n
	}
	hb.Firmware = get("FWVersion", "FirmVer", "FirmwareVersion")
	hb.DeviceName = get("DeviceName", "~DeviceName")
	hb.Platform = get("Platform", "~Platform")
	hb.Users = num("UserCount")
	hb.Records = num("TransactionCount", "AttLogCount")
	hb.RecordCapacity = num("MaxAttLogCount", "~MaxAttLogCount")
	if hb.RecordCapacity > 0 {
		hb.CapacityUsed = float64(hb.Records) / float64(hb.RecordCapacity)
	}
}
