package zksim

import (
	"fmt"
	"slices"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// Config describes a simulated device. The zero value of every field selects
// the default named in its comment.
type Config struct {
	// Seed makes the generated users, log and live punches reproducible.
	Seed int64
	// Users is the number of generated users (default 20).
	Users int
	// Records is the number of generated attendance records (0 = empty log).
	Records int
	// Start is the first day of the generated log (default 2024-01-01, a
	// Monday). Punches fall on weekdays only.
	Start time.Time
	// RecordSize is the attendance layout: 8, 16, 40 (default) or more
	// (40-byte records padded, e.g. 49).
	RecordSize int
	// UserSize is the user layout: 28 or 72 (default).
	UserSize int
	// EventSize is the EventAttLog data length, one of zk.EventSizes
	// (default 32 with 40-byte records, 12 with 16-byte, 10 with 8-byte).
	EventSize int
	// CommKey, when non-zero, makes the device answer CMD_CONNECT with
	// CMD_ACK_UNAUTH and accept only a CMD_AUTH derived from this key.
	CommKey uint32

	SerialNumber string // default "SIM" + seed, e.g. "SIM0001"
	Platform     string // default "ZEM760_TFT"
	DeviceName   string // default "F18"
	MAC          string // default derived from the seed
	Firmware     string // default "Ver 6.60 Apr 26 2016"

	// InlineMax is the largest dataset (with its 4-byte prefix) answered
	// inline as one CMD_DATA packet (default 1000, which keeps inline UDP
	// replies within pyzk's 1 024-byte read); larger ones go through
	// CMD_READ_BUFFER chunks. A negative value never answers inline.
	InlineMax int
	// FrameGap is the least pause between two packets a session sends,
	// within a reply and between replies and events (Node clients need
	// ≈ 20–30 ms; default 0, fast).
	FrameGap time.Duration
	// PunchInterval, when positive, makes the device generate a live punch
	// from a random user at this rate.
	PunchInterval time.Duration
	// Location is the zone of the device's wall clock (default time.UTC).
	Location *time.Location
	// UserCapacity and RecordCapacity are reported by CMD_GET_FREE_SIZES
	// (defaults 5 000 and 100 000). A log at RecordCapacity takes no more
	// punches.
	UserCapacity   int
	RecordCapacity int
	// AutoEnable re-enables the device when the session that disabled it
	// ends. Real devices stay disabled (default false).
	AutoEnable bool
	// StrictChecksum drops inbound packets with a bad checksum instead of
	// counting and accepting them.
	StrictChecksum bool
	// NoBufferedRead models old firmware without CMD_PREPARE_BUFFER: it is
	// answered CMD_ACK_UNKNOWN and clients must use the legacy direct read.
	NoBufferedRead bool
	// UDPSessionTimeout ends a UDP session idle this long (default 30 s).
	UDPSessionTimeout time.Duration
	// Faults injects failures.
	Faults Faults
}

// SessionPolicy says how a device treats a session while another is open.
type SessionPolicy int

const (
	// SessionsUnlimited accepts any number of sessions.
	SessionsUnlimited SessionPolicy = iota
	// SessionsRefuse refuses a second session: over TCP its connection is
	// reset when it sends CMD_CONNECT, over UDP CMD_CONNECT is answered
	// CMD_ACK_ERROR.
	SessionsRefuse
	// SessionsBlock leaves CMD_CONNECT of a second session unanswered while
	// the first is open; over TCP it is answered once the first ends.
	SessionsBlock
)

// Faults are failures a device can inject. Chunk numbers count
// CMD_READ_BUFFER requests over the device's life, from 1; one-shot faults
// fire once.
type Faults struct {
	// RefuseConnect resets every TCP connection as soon as it is accepted
	// and answers CMD_CONNECT over UDP with CMD_ACK_ERROR.
	RefuseConnect bool
	// IgnoreConnect never answers CMD_CONNECT.
	IgnoreConnect bool
	// ResetOnChunk (one-shot) answers that chunk with half a frame and then
	// resets the TCP connection; over UDP the chunk's data and CMD_ACK_OK are
	// never sent.
	ResetOnChunk int
	// StallOnChunk (one-shot) delays the answer to that chunk by Stall.
	StallOnChunk int
	Stall        time.Duration
	// ChunkDelay delays the answer to every chunk (a slow device).
	ChunkDelay time.Duration
	// Latency delays every reply (an added round trip).
	Latency time.Duration
	// Bandwidth, when positive, limits what the device sends to this many
	// bytes per second per session (a slow link or a slow device; the
	// issue's realistic figure is 100 KB/s). TCP frames are paced in pieces
	// of at most 2 KiB, UDP datagrams one by one; 0 is unlimited.
	Bandwidth int
	// DropEvery drops every Nth UDP datagram the device sends.
	DropEvery int
	// DropRate drops each UDP datagram the device sends with this
	// probability (seeded).
	DropRate float64
	// GarbageBytes appends this many junk bytes to the attendance dataset
	// without changing the record count.
	GarbageBytes int
	// CorruptRecords lists indices of attendance records whose time field is
	// overwritten with 0xFFFFFFFF (an impossible date) in the bytes sent.
	CorruptRecords []int
	// ClockSkew offsets the device clock from the host's.
	ClockSkew time.Duration
	// DuplicatePunches inserts this many exact duplicates of random records
	// into the generated log (the log keeps Records records in all).
	DuplicatePunches int
	// FullLog fills the log to RecordCapacity: no free space is reported and
	// new punches are refused.
	FullLog bool
	// StartDisabled leaves the device disabled, as after a client that died
	// between CMD_DISABLEDEVICE and CMD_ENABLEDEVICE. Punches queue until a
	// client enables it.
	StartDisabled bool
	// OneSession limits the device to one session at a time.
	OneSession SessionPolicy
}

// withDefaults returns cfg with defaults filled in, or an error naming the
// first invalid field.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Users == 0 {
		cfg.Users = 20
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if cfg.RecordSize == 0 {
		cfg.RecordSize = zk.AttendanceSize40
	}
	if cfg.UserSize == 0 {
		cfg.UserSize = zk.UserSize72
	}
	if cfg.EventSize == 0 {
		switch cfg.RecordSize {
		case zk.AttendanceSize8:
			cfg.EventSize = 10
		case zk.AttendanceSize16:
			cfg.EventSize = 12
		default:
			cfg.EventSize = 32
		}
	}
	if cfg.SerialNumber == "" {
		cfg.SerialNumber = fmt.Sprintf("SIM%04d", cfg.Seed)
	}
	if cfg.Platform == "" {
		cfg.Platform = "ZEM760_TFT"
	}
	if cfg.DeviceName == "" {
		cfg.DeviceName = "F18"
	}
	if cfg.MAC == "" {
		s := uint64(cfg.Seed)
		cfg.MAC = fmt.Sprintf("00:17:61:%02x:%02x:%02x", byte(s>>16), byte(s>>8), byte(s))
	}
	if cfg.Firmware == "" {
		cfg.Firmware = "Ver 6.60 Apr 26 2016"
	}
	if cfg.InlineMax == 0 {
		cfg.InlineMax = 1000
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.UserCapacity == 0 {
		cfg.UserCapacity = 5000
	}
	if cfg.RecordCapacity == 0 {
		cfg.RecordCapacity = 100_000
	}
	if cfg.UDPSessionTimeout == 0 {
		cfg.UDPSessionTimeout = 30 * time.Second
	}
	f := cfg.Faults
	switch {
	case cfg.Users < 0 || cfg.Users > cfg.UserCapacity || cfg.Users > 60000:
		return cfg, fmt.Errorf("zksim: Users %d: want 0–min(UserCapacity %d, 60000)", cfg.Users, cfg.UserCapacity)
	case cfg.Records < 0 || cfg.Records > cfg.RecordCapacity:
		return cfg, fmt.Errorf("zksim: Records %d: want 0–RecordCapacity %d", cfg.Records, cfg.RecordCapacity)
	case cfg.RecordSize != zk.AttendanceSize8 && cfg.RecordSize != zk.AttendanceSize16 && cfg.RecordSize < zk.AttendanceSize40:
		return cfg, fmt.Errorf("zksim: RecordSize %d: want 8, 16 or at least 40", cfg.RecordSize)
	case cfg.UserSize != zk.UserSize28 && cfg.UserSize != zk.UserSize72:
		return cfg, fmt.Errorf("zksim: UserSize %d: want 28 or 72", cfg.UserSize)
	case !slices.Contains(zk.EventSizes, cfg.EventSize):
		return cfg, fmt.Errorf("zksim: EventSize %d: want one of %v", cfg.EventSize, zk.EventSizes)
	case f.DropRate < 0 || f.DropRate >= 1:
		return cfg, fmt.Errorf("zksim: Faults.DropRate %v: want [0, 1)", f.DropRate)
	case f.Bandwidth < 0:
		return cfg, fmt.Errorf("zksim: Faults.Bandwidth %d: want bytes per second, or 0 for unlimited", f.Bandwidth)
	case f.DropEvery < 0 || f.GarbageBytes < 0 || f.DuplicatePunches < 0 || f.ResetOnChunk < 0 || f.StallOnChunk < 0:
		return cfg, fmt.Errorf("zksim: negative fault count in %+v", f)
	}
	n := cfg.Records
	if f.FullLog {
		n = cfg.RecordCapacity
	}
	for _, i := range f.CorruptRecords {
		if i < 0 || i >= n {
			return cfg, fmt.Errorf("zksim: Faults.CorruptRecords index %d outside the %d records", i, n)
		}
	}
	return cfg, nil
}
