// Package admssim simulates a ZKTeco device in ADMS (push) mode, for tests,
// benchmarks and demos of the collector's /iclock endpoint. Like a real
// terminal it handshakes (GET /iclock/cdata?options=all) and takes the
// server's stamps and timing options, uploads the attendance log records
// newer than the server's ATTLOG stamp in batches (POST
// /iclock/cdata?table=ATTLOG&Stamp=…), keeps a batch and sends it again
// after ErrorDelay until the server answers OK, polls for commands every
// Delay (GET /iclock/getrequest), runs INFO, CHECK, LOG, REBOOT and GET
// OPTION, and confirms them (POST /iclock/devicecmd).
package admssim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Punch is one attendance record in the device's log.
type Punch struct {
	PIN      string
	Time     time.Time // the device's wall clock
	Status   int
	Verify   int
	WorkCode int
	// Raw, when set, is sent instead of the formatted line (to push a
	// broken line).
	Raw string
}

// Line renders p as an ATTLOG line.
func (p Punch) Line() string {
	if p.Raw != "" {
		return p.Raw
	}
	return fmt.Sprintf("%s\t%s\t%d\t%d\t%d\t0\t0", p.PIN, p.Time.Format(time.DateTime), p.Status, p.Verify, p.WorkCode)
}

// Config describes a simulated device. Zero values select the defaults
// named.
type Config struct {
	Serial string
	// URL is the server's base URL, e.g. http://127.0.0.1:8088.
	URL string
	// Punches is the log the device holds at start.
	Punches []Punch
	// BatchSize is the most records per upload (default 200).
	BatchSize int
	// Delay, ErrorDelay and TransInterval replace the server's options of
	// the same names when positive (tests run on milliseconds; a real
	// device on the server's seconds and minutes).
	Delay, ErrorDelay, TransInterval time.Duration
	// LoseResponses drops the answers of this many ATTLOG uploads after
	// the server has processed them, as a broken connection does: the
	// device sends the same batch again.
	LoseResponses int
	// FirstStamp is the stamp of the first record (default 1000); each
	// record's stamp is one more than the one before.
	FirstStamp int64

	Firmware   string // default "Ver 8.0.4.7-20220607"
	DeviceName string // default "SpeedFace-V5L"
	Platform   string // default "ZAM180_TFT"
	Users      int    // default 20
	Capacity   int    // default 200,000
	// Client is the HTTP client (default: one with a 30 s timeout).
	Client *http.Client
	Log    *slog.Logger
}

// Stats counts what the device did.
type Stats struct {
	Handshakes int
	// Uploads counts ATTLOG uploads sent, Resends those that repeated a
	// batch after a failure, Failures the uploads not answered OK.
	Uploads, Resends, Failures int
	// Acked is the number of records the server acknowledged.
	Acked    int
	Polls    int
	Commands int
	// Refused counts answers 403 (not on the allow-list).
	Refused int
}

// Device is a simulated push device. Punch, Stats, Pending and WaitSynced
// are safe to call while Run runs.
type Device struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger

	mu      sync.Mutex
	punches []Punch
	acked   int // punches[:acked] are acknowledged
	stats   Stats
	lose    int
	rehand  bool // a CHECK or REBOOT asks for a new handshake
	results []string
	synced  chan struct{} // closed and replaced when acked reaches len(punches)

	wake chan struct{}

	// options from the handshake
	delay, errorDelay, transInterval time.Duration
	realtime                         bool
}

// New returns a device; Run starts it.
func New(cfg Config) *Device {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 200
	}
	if cfg.FirstStamp == 0 {
		cfg.FirstStamp = 1000
	}
	if cfg.Firmware == "" {
		cfg.Firmware = "Ver 8.0.4.7-20220607"
	}
	if cfg.DeviceName == "" {
		cfg.DeviceName = "SpeedFace-V5L"
	}
	if cfg.Platform == "" {
		cfg.Platform = "ZAM180_TFT"
	}
	if cfg.Users == 0 {
		cfg.Users = 20
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = 200000
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	d := &Device{cfg: cfg, client: cfg.Client, log: cfg.Log.With("sim", cfg.Serial), punches: append([]Punch(nil), cfg.Punches...),
		lose: cfg.LoseResponses, wake: make(chan struct{}, 1), synced: make(chan struct{})}
	if d.client == nil {
		d.client = &http.Client{Timeout: 30 * time.Second}
	}
	return d
}

// Punch adds a record to the log; a device in real-time mode uploads it at
// once.
func (d *Device) Punch(p Punch) {
	d.mu.Lock()
	d.punches = append(d.punches, p)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Stats returns the counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Pending is the number of records not acknowledged yet.
func (d *Device) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.punches) - d.acked
}

// Results returns the command confirmations the device sent, as posted.
func (d *Device) Results() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.results...)
}

// WaitSynced returns once every record was acknowledged, or ctx's error.
func (d *Device) WaitSynced(ctx context.Context) error {
	for {
		d.mu.Lock()
		done := d.acked == len(d.punches)
		ch := d.synced
		d.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Run talks to the server until ctx ends; it returns nil then. Failures
// are retried after ErrorDelay, as a device does.
func (d *Device) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := d.handshake(ctx); err != nil {
			d.log.Debug("handshake failed", "err", err)
			sleep(ctx, d.retryDelay())
			continue
		}
		d.session(ctx)
	}
	return nil
}

func (d *Device) retryDelay() time.Duration {
	if d.cfg.ErrorDelay > 0 {
		return d.cfg.ErrorDelay
	}
	if d.errorDelay > 0 {
		return d.errorDelay
	}
	return 30 * time.Second
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (d *Device) url(path string, q url.Values) string {
	q.Set("SN", d.cfg.Serial)
	return strings.TrimRight(d.cfg.URL, "/") + path + "?" + q.Encode()
}

// do sends a request and returns the status and body.
func (d *Device) do(ctx context.Context, method, u, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("User-Agent", "iClock Proxy/1.09")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain")
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusForbidden {
		d.mu.Lock()
		d.stats.Refused++
		d.mu.Unlock()
	}
	return resp.StatusCode, string(b), err
}

// handshake fetches the options and adopts the server's ATTLOG stamp.
func (d *Device) handshake(ctx context.Context) error {
	q := url.Values{"options": {"all"}, "pushver": {"2.4.1"}, "language": {"69"}}
	status, body, err := d.do(ctx, http.MethodGet, d.url("/iclock/cdata", q), "")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("handshake: HTTP %d: %s", status, strings.TrimSpace(body))
	}
	opts := map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			opts[k] = v
		}
	}
	secs := func(k string, def time.Duration, unit time.Duration) time.Duration {
		if n, err := strconv.Atoi(opts[k]); err == nil && n > 0 {
			return time.Duration(n) * unit
		}
		return def
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Handshakes++
	d.delay = secs("Delay", 10*time.Second, time.Second)
	d.errorDelay = secs("ErrorDelay", 30*time.Second, time.Second)
	d.transInterval = secs("TransInterval", time.Minute, time.Minute)
	d.realtime = opts["Realtime"] != "0"
	d.rehand = false
	// Records up to the server's stamp are known to it: start after them.
	if n, err := strconv.ParseInt(opts["ATTLOGStamp"], 10, 64); err == nil {
		d.acked = max(0, min(len(d.punches), int(n-d.cfg.FirstStamp+1)))
	} else {
		d.acked = 0 // "None": the server has nothing, send everything
	}
	d.signalLocked()
	return nil
}

func (d *Device) signalLocked() {
	if d.acked == len(d.punches) {
		close(d.synced)
		d.synced = make(chan struct{})
	}
}

func (d *Device) option(override, fromServer time.Duration) time.Duration {
	if override > 0 {
		return override
	}
	return fromServer
}

// session uploads and polls until ctx ends or a new handshake is due.
func (d *Device) session(ctx context.Context) {
	d.mu.Lock()
	poll := d.option(d.cfg.Delay, d.delay)
	trans := d.option(d.cfg.TransInterval, d.transInterval)
	realtime := d.realtime
	d.mu.Unlock()
	nextPoll := time.Now()
	lastUpload := time.Now()
	for ctx.Err() == nil {
		if realtime || time.Since(lastUpload) >= trans {
			ok, sent := d.upload(ctx)
			if sent {
				lastUpload = time.Now()
			}
			if !ok {
				sleep(ctx, d.retryDelay())
				continue
			}
			if d.Pending() > 0 {
				continue // the next batch at once
			}
		}
		if !time.Now().Before(nextPoll) {
			d.poll(ctx)
			nextPoll = time.Now().Add(poll)
		}
		d.mu.Lock()
		rehand := d.rehand
		d.mu.Unlock()
		if rehand {
			return
		}
		wait := time.Until(nextPoll)
		if !realtime {
			wait = min(wait, max(0, trans-time.Since(lastUpload)))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-d.wake:
		}
		t.Stop()
	}
}

// upload sends the next batch of unacknowledged records. ok is false when
// the server did not answer OK; sent is false when nothing was pending.
func (d *Device) upload(ctx context.Context) (ok, sent bool) {
	d.mu.Lock()
	from := d.acked
	to := min(len(d.punches), from+d.cfg.BatchSize)
	if from == to {
		d.mu.Unlock()
		return true, false
	}
	var b strings.Builder
	for _, p := range d.punches[from:to] {
		b.WriteString(p.Line())
		b.WriteByte('\n')
	}
	stamp := d.cfg.FirstStamp + int64(to) - 1
	d.stats.Uploads++
	lose := d.lose > 0
	if lose {
		d.lose--
	}
	d.mu.Unlock()
	q := url.Values{"table": {"ATTLOG"}, "Stamp": {strconv.FormatInt(stamp, 10)}}
	status, body, err := d.do(ctx, http.MethodPost, d.url("/iclock/cdata", q), b.String())
	if err == nil && lose {
		err = errors.New("connection reset before the answer arrived (simulated)")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil || status != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(body), "OK") {
		d.stats.Failures++
		d.stats.Resends++ // the same batch goes again
		d.log.Debug("upload not acknowledged; keeping the records", "records", to-from, "status", status, "body", strings.TrimSpace(body), "err", err)
		return false, true
	}
	if d.acked == from {
		d.acked = to
		d.stats.Acked += to - from
	}
	d.signalLocked()
	return true, true
}

// poll asks for commands, runs them and confirms them.
func (d *Device) poll(ctx context.Context) {
	d.mu.Lock()
	d.stats.Polls++
	info := fmt.Sprintf("%s,%d,0,%d,127.0.0.1,10,7,0,0", d.cfg.Firmware, d.cfg.Users, len(d.punches))
	d.mu.Unlock()
	status, body, err := d.do(ctx, http.MethodGet, d.url("/iclock/getrequest", url.Values{"INFO": {info}}), "")
	if err != nil || status != http.StatusOK {
		return
	}
	var results []string
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "C:")
		if !ok {
			continue
		}
		id, cmd, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		results = append(results, d.run(id, cmd))
	}
	if len(results) == 0 {
		return
	}
	d.mu.Lock()
	d.stats.Commands += len(results)
	d.mu.Unlock()
	resultBody := strings.Join(results, "\n") + "\n"
	for ctx.Err() == nil {
		status, _, err := d.do(ctx, http.MethodPost, d.url("/iclock/devicecmd", url.Values{}), resultBody)
		if err == nil && status == http.StatusOK {
			d.mu.Lock()
			d.results = append(d.results, results...)
			d.mu.Unlock()
			return
		}
		sleep(ctx, d.retryDelay())
	}
}

// run executes one command and returns its confirmation.
func (d *Device) run(id, cmd string) string {
	name, _, _ := strings.Cut(cmd, " ")
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case cmd == "INFO":
		return fmt.Sprintf("ID=%s&Return=0&CMD=INFO\n~DeviceName=%s\nFWVersion=%s\nPlatform=%s\nUserCount=%d\nTransactionCount=%d\nMaxAttLogCount=%d\nIPAddress=127.0.0.1",
			id, d.cfg.DeviceName, d.cfg.Firmware, d.cfg.Platform, d.cfg.Users, len(d.punches), d.cfg.Capacity)
	case cmd == "CHECK", cmd == "REBOOT":
		d.rehand = true
		return fmt.Sprintf("ID=%s&Return=0&CMD=%s", id, cmd)
	case cmd == "LOG":
		select {
		case d.wake <- struct{}{}:
		default:
		}
		return fmt.Sprintf("ID=%s&Return=0&CMD=LOG", id)
	case strings.HasPrefix(cmd, "GET OPTION FROM "):
		return fmt.Sprintf("ID=%s&Return=0&CMD=GET OPTION", id)
	case strings.HasPrefix(cmd, "DATA QUERY"):
		return fmt.Sprintf("ID=%s&Return=-1&CMD=DATA", id)
	}
	return fmt.Sprintf("ID=%s&Return=-1002&CMD=%s", id, name)
}
