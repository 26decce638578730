package zksim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// Errors returned by Device methods.
var (
	// ErrLogFull reports a punch refused because the log is at capacity.
	ErrLogFull = errors.New("zksim: attendance log full")
	// ErrUnknownUser reports a punch for a user id the device does not hold.
	ErrUnknownUser = errors.New("zksim: unknown user")
	// ErrListening reports a second Listen on one Device, or a Listen after
	// Close.
	ErrListening = errors.New("zksim: device already listening or closed")
)

// Stats counts what a device saw and did. Tests use it to check client
// behaviour (retries, acknowledgements, enable/disable).
type Stats struct {
	Connections      int // TCP connections accepted
	Sessions         int // sessions opened by CMD_CONNECT
	Refused          int // connections or sessions refused
	Requests         int // packets handled
	Prepares         int // CMD_PREPARE_BUFFER requests answered with data or a size
	InlineReplies    int // datasets answered inline
	ChunkReads       int // CMD_READ_BUFFER requests
	Frees            int // CMD_FREE_DATA requests
	LegacyReads      int // direct CMD_ATTLOG_RRQ / CMD_USERTEMP_RRQ reads
	Disables         int // CMD_DISABLEDEVICE requests
	Enables          int // CMD_ENABLEDEVICE requests (and automatic re-enables)
	AcksReceived     int // CMD_ACK_OK packets from clients (never answered)
	Registrations    int // CMD_REG_EVENT requests with a non-zero mask
	EventsSent       int // realtime event packets queued to sessions
	DroppedDatagrams int // UDP datagrams dropped by Faults.DropEvery / DropRate
	BadChecksums     int // inbound packets with a bad checksum
	Resets           int // chunks cut by Faults.ResetOnChunk
	PunchesRefused   int // punches refused because the log was full
}

// Device is a simulated terminal. Create it with NewDevice (or Start), serve
// it with Listen and stop it with Close. All methods are safe for concurrent
// use.
type Device struct {
	cfg Config

	mu        sync.Mutex
	users     []zk.User
	att       []zk.AttendanceRecord
	profiles  map[int]profile
	queued    []zk.AttendanceRecord // punches taken while disabled
	lastPunch map[int]int           // uid → last live state, for alternating in/out
	enabled   bool
	skew      time.Duration
	sessions  map[*session]struct{}
	udp       map[string]*session
	nextID    uint16
	stats     Stats
	sent      int // UDP datagrams sent, for DropEvery
	rng       *rand.Rand
	addr      string
	closed    bool

	slot chan struct{} // held by the session that owns the device under OneSession
	done chan struct{}
	ln   net.Listener
	pc   net.PacketConn
	wg   sync.WaitGroup
	once sync.Once
}

// NewDevice generates the device's data from cfg. It fails when cfg is
// invalid (the error names the field). The device does not serve until
// Listen.
func NewDevice(cfg Config) (*Device, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ds, err := generate(cfg)
	if err != nil {
		return nil, fmt.Errorf("zksim: %w", err)
	}
	for _, i := range cfg.Faults.CorruptRecords {
		r := &ds.records[i]
		r.Raw = bytes.Clone(r.Raw)
		off := 4
		if cfg.RecordSize >= zk.AttendanceSize40 {
			off = 27
		}
		copy(r.Raw[off:], []byte{0xFF, 0xFF, 0xFF, 0xFF})
	}
	for _, u := range ds.users {
		if _, err := zk.AppendUser(nil, u, cfg.UserSize); err != nil {
			return nil, fmt.Errorf("zksim: %w", err)
		}
	}
	return &Device{
		cfg:       cfg,
		users:     ds.users,
		att:       ds.records,
		profiles:  ds.profiles,
		lastPunch: make(map[int]int),
		enabled:   !cfg.Faults.StartDisabled,
		skew:      cfg.Faults.ClockSkew,
		sessions:  make(map[*session]struct{}),
		udp:       make(map[string]*session),
		nextID:    0x1235,
		rng:       rand.New(rand.NewPCG(uint64(cfg.Seed), 0x4c495645)),
		slot:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}, nil
}

// Start is NewDevice followed by Listen on 127.0.0.1 with a free port.
func Start(cfg Config) (*Device, error) {
	d, err := NewDevice(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := d.Listen(context.Background(), "127.0.0.1:0"); err != nil {
		return nil, err
	}
	return d, nil
}

// Listen serves the device on addr over TCP and UDP on the same port, and
// starts the live-punch generator if Config.PunchInterval is set. With port 0
// it picks a port free for both. ctx bounds only the setting up; the device
// serves until Close. It returns the address ("host:port").
func (d *Device) Listen(ctx context.Context, addr string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ln != nil || d.closed {
		return "", ErrListening
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("zksim: listen %s: %w", addr, err)
	}
	var lc net.ListenConfig
	for attempt := 0; ; attempt++ {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return "", fmt.Errorf("zksim: listen tcp %s: %w", addr, err)
		}
		_, p, _ := net.SplitHostPort(ln.Addr().String())
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, p))
		if err != nil {
			_ = ln.Close()
			if port == "0" && attempt < 10 {
				continue // UDP port taken: try another
			}
			return "", fmt.Errorf("zksim: listen udp %s: %w", net.JoinHostPort(host, p), err)
		}
		d.ln, d.pc, d.addr = ln, pc, ln.Addr().String()
		break
	}
	d.wg.Add(2)
	go d.acceptTCP()
	go d.serveUDP()
	if d.cfg.PunchInterval > 0 {
		d.wg.Add(1)
		go d.generatePunches()
	}
	return d.addr, nil
}

// Close stops serving, ends every session and waits for the device's
// goroutines. It is idempotent.
func (d *Device) Close() error {
	d.once.Do(func() {
		d.mu.Lock()
		d.closed = true
		close(d.done)
		if d.ln != nil {
			_ = d.ln.Close()
			_ = d.pc.Close()
		}
		for s := range d.sessions {
			d.endSessionLocked(s)
		}
		d.mu.Unlock()
		d.wg.Wait()
	})
	return nil
}

// Addr returns the address the device listens on ("" before Listen).
func (d *Device) Addr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addr
}

// Config returns the device's configuration with defaults filled in.
func (d *Device) Config() Config { return d.cfg }

// Users returns a copy of the user table.
func (d *Device) Users() []zk.User {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.users)
}

// Attendance returns a copy of the attendance log in device order. Raw is
// exactly what the device sends for each record; for records corrupted by
// Faults.CorruptRecords the other fields keep the values before corruption.
// Raw slices are shared: do not modify them.
func (d *Device) Attendance() []zk.AttendanceRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.att)
}

// Enabled reports whether the device takes punches (not disabled by a
// client).
func (d *Device) Enabled() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.enabled
}

// Queued returns the number of punches waiting for the device to be enabled.
func (d *Device) Queued() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.queued)
}

// Sessions returns the number of open sessions (CMD_CONNECT accepted).
func (d *Device) Sessions() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for s := range d.sessions {
		if s.connected {
			n++
		}
	}
	return n
}

// Stats returns a snapshot of the device's counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Now returns the device's wall clock: the host clock in Config.Location,
// plus the skew, as a zone-less time in time.UTC truncated to the second.
func (d *Device) Now() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nowLocked()
}

func (d *Device) nowLocked() time.Time { return wall(time.Now(), d.cfg.Location).Add(d.skew) }

// wall returns t's wall clock in loc as a UTC-located time, to the second.
func wall(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

// Punch records a punch by userID now (device clock), as if the person had
// used the terminal, and pushes an EventAttLog event to every session that
// registered for it. While the device is disabled the punch is queued and
// recorded when a client enables it. It fails with ErrUnknownUser or,
// when the log is full, ErrLogFull.
func (d *Device) Punch(userID string, state, verifyMode int) (zk.AttendanceRecord, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	i := slices.IndexFunc(d.users, func(u zk.User) bool { return u.UserID == userID })
	if i < 0 {
		return zk.AttendanceRecord{}, fmt.Errorf("punch by %q: %w", userID, ErrUnknownUser)
	}
	r := zk.AttendanceRecord{UID: d.users[i].UID, UserID: userID, DeviceTime: d.nowLocked(), State: state, VerifyMode: verifyMode}
	raw, err := zk.AppendAttendance(nil, r, d.cfg.RecordSize)
	if err != nil {
		return zk.AttendanceRecord{}, fmt.Errorf("punch by %q: %w", userID, err)
	}
	r.Raw = raw
	if len(d.att)+len(d.queued) >= d.cfg.RecordCapacity {
		d.stats.PunchesRefused++
		return zk.AttendanceRecord{}, fmt.Errorf("punch by %q: %w", userID, ErrLogFull)
	}
	if !d.enabled {
		d.queued = append(d.queued, r)
		return r, nil
	}
	d.storeLocked(r)
	return r, nil
}

// storeLocked appends a punch to the log and pushes its event.
func (d *Device) storeLocked(r zk.AttendanceRecord) {
	d.att = append(d.att, r)
	var pkt []byte
	for s := range d.sessions {
		if !s.connected || s.events&uint32(zk.EventAttLog) == 0 {
			continue
		}
		if pkt == nil {
			data, err := zk.AppendEvent(nil, zk.Event{UserID: r.UserID, State: r.State, VerifyMode: r.VerifyMode, Time: r.DeviceTime}, d.cfg.EventSize)
			if err != nil {
				return // the user id does not fit this event layout
			}
			pkt = zk.EncodePacket(zk.CmdRegEvent, zk.EventAttLog, 0, data)
		}
		select {
		case s.out <- reply{packets: [][]byte{pkt}}:
			d.stats.EventsSent++
		default: // the session is not reading; devices do not buffer events
		}
	}
}

// setEnabledLocked enables or disables the device; enabling records the
// punches queued meanwhile.
func (d *Device) setEnabledLocked(on bool) {
	d.enabled = on
	if !on {
		return
	}
	q := d.queued
	d.queued = nil
	for _, r := range q {
		d.storeLocked(r)
	}
}

// sizesLocked returns the CMD_GET_FREE_SIZES counts, consistent with the data.
func (d *Device) sizesLocked() zk.Sizes {
	s := zk.Sizes{
		Users:          len(d.users),
		Records:        len(d.att),
		FingerCapacity: 3000, FingersAvailable: 3000,
		UserCapacity:     d.cfg.UserCapacity,
		RecordCapacity:   d.cfg.RecordCapacity,
		UsersAvailable:   max(d.cfg.UserCapacity-len(d.users), 0),
		RecordsAvailable: max(d.cfg.RecordCapacity-len(d.att), 0),
	}
	for _, u := range d.users {
		if u.Level() == zk.PrivilegeAdmin {
			s.Admins++
		}
		if u.Password != "" {
			s.Passwords++
		}
	}
	return s
}

// datasetLocked returns the dataset (with its length prefix) of a bulk read.
func (d *Device) datasetLocked(inner zk.Command) ([]byte, bool) {
	var recs []byte
	switch inner {
	case zk.CmdAttLogRRQ:
		recs = make([]byte, 0, len(d.att)*d.cfg.RecordSize+d.cfg.Faults.GarbageBytes)
		for _, r := range d.att {
			recs = append(recs, r.Raw...)
		}
		for range d.cfg.Faults.GarbageBytes {
			recs = append(recs, 0xEE)
		}
	case zk.CmdUserTempRRQ:
		for _, u := range d.users {
			recs, _ = zk.AppendUser(recs, u, d.cfg.UserSize) // validated by NewDevice
		}
	default:
		return nil, false
	}
	return zk.EncodeDataset(recs), true
}

// option returns the value of a CMD_OPTIONS_RRQ key.
func (d *Device) option(key string) (string, bool) {
	v, ok := map[string]string{
		zk.OptionSerialNumber: d.cfg.SerialNumber,
		zk.OptionPlatform:     d.cfg.Platform,
		zk.OptionDeviceName:   d.cfg.DeviceName,
		zk.OptionMAC:          d.cfg.MAC,
		zk.OptionFPVersion:    "10",
		zk.OptionPIN2Width:    "9",
		zk.OptionOEMVendor:    "ZKTeco Inc.",
		"~ZKFaceVersion":      "7",
		"~ExtendFmt":          "1",
		"~UserExtFmt":         "1",
		"FaceFunOn":           "0",
		"CompatOldFirmware":   "0",
		"WorkCode":            "0",
	}[key]
	return v, ok
}

// generatePunches makes a random user punch every Config.PunchInterval,
// alternating check-in and check-out per user.
func (d *Device) generatePunches() {
	defer d.wg.Done()
	t := time.NewTicker(d.cfg.PunchInterval)
	defer t.Stop()
	for {
		select {
		case <-d.done:
			return
		case <-t.C:
		}
		d.mu.Lock()
		if len(d.users) == 0 {
			d.mu.Unlock()
			continue
		}
		u := d.users[d.rng.IntN(len(d.users))]
		state := zk.StateCheckIn
		if last, ok := d.lastPunch[u.UID]; ok && last == zk.StateCheckIn {
			state = zk.StateCheckOut
		}
		d.lastPunch[u.UID] = state
		verify := d.profiles[u.UID].verify
		d.mu.Unlock()
		_, _ = d.Punch(u.UserID, state, verify) // a full log refuses; counted in Stats
	}
}
