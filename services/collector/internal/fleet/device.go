package fleet

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// Mode says how a device is read.
type Mode string

const (
	// ModePoll opens a session every poll interval, downloads the log and
	// publishes what is new.
	ModePoll Mode = "poll"
	// ModeLive keeps a session open and publishes realtime events as they
	// come; a bulk read on every (re)connect reconciles what was missed.
	ModeLive Mode = "live"
)

// Defaults applied to a device that does not set the field (and that the
// fleet file's defaults section does not set either).
const (
	DefaultPort         = 4370
	DefaultPollInterval = 5 * time.Minute
	// MinPollInterval keeps a misconfigured device from being hammered.
	MinPollInterval = 100 * time.Millisecond
)

// CommKey is a device's numeric comm key (password). Its String and LogValue
// never show the key, only where it came from.
type CommKey struct {
	value  uint32
	set    bool
	source string
}

// NewCommKey returns a key; source says where it was read from (for logs).
func NewCommKey(value uint32, source string) CommKey {
	return CommKey{value: value, set: true, source: source}
}

// Set reports whether a key is configured.
func (k CommKey) Set() bool { return k.set }

// String masks the key.
func (k CommKey) String() string {
	if !k.set {
		return "none"
	}
	return "*** (from " + k.source + ")"
}

// LogValue masks the key.
func (k CommKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// ParseCommKey parses a comm key as devices take it: a decimal number from 0
// to 4294967295 (the device menus allow up to 999999).
func ParseCommKey(s string) (uint32, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, errors.New("a comm key is a decimal number from 0 to 4294967295")
	}
	return uint32(v), nil
}

// Device is one terminal of the fleet, as configured. Devices are addressed
// by serial number: the serial names the subjects, the checkpoint and the
// heartbeats, and a session that finds another serial at the address is
// refused (a DHCP lease moved).
type Device struct {
	Serial   string
	Host     string
	Port     int
	UDP      bool
	CommKey  CommKey
	Site     string
	TimeZone string // IANA name; empty: unknown (clock offsets against UTC)
	// Location is TimeZone loaded (time.UTC when TimeZone is empty).
	Location     *time.Location
	PollInterval time.Duration
	Mode         Mode
	// ClearAfterRead deletes the device's log after every record read was
	// acknowledged by JetStream (opt-in; bounds the log on old devices).
	ClearAfterRead bool
	// Timeout overrides the fleet's per-request timeout when positive.
	Timeout time.Duration
}

// Addr is host:port.
func (d *Device) Addr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }

// Transport is "tcp" or "udp".
func (d *Device) Transport() string {
	if d.UDP {
		return "udp"
	}
	return "tcp"
}

// LogValue shows the device's settings with the comm key masked.
func (d *Device) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("serial", d.Serial), slog.String("address", d.Addr()), slog.String("transport", d.Transport()),
		slog.String("site", d.Site), slog.String("time_zone", d.TimeZone), slog.String("mode", string(d.Mode)),
		slog.Duration("poll_interval", d.PollInterval), slog.Bool("clear_after_read", d.ClearAfterRead),
		slog.Any("comm_key", d.CommKey))
}

// fingerprint identifies the settings that decide whether a session can
// succeed (where, how, which key): a change resets the device's breaker, so
// that fixing a wrong comm key takes effect at once.
func (d *Device) fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s|%s|%v|%d", d.Addr(), d.Transport(), d.CommKey.set, d.CommKey.value)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// fileDoc is the fleet file.
type fileDoc struct {
	Defaults deviceDoc   `yaml:"defaults"`
	Devices  []deviceDoc `yaml:"devices"`
}

// deviceDoc is one device entry (or the defaults). Pointers tell "not set"
// from a zero value.
type deviceDoc struct {
	Serial         string         `yaml:"serial"`
	Address        string         `yaml:"address"`
	Port           *int           `yaml:"port"`
	Transport      string         `yaml:"transport"`
	CommKeyEnv     string         `yaml:"comm_key_env"`
	CommKeyFile    string         `yaml:"comm_key_file"`
	CommKey        yaml.Node      `yaml:"comm_key"` // refused: keys never live in the fleet file
	Site           string         `yaml:"site"`
	TimeZone       string         `yaml:"time_zone"`
	PollInterval   *time.Duration `yaml:"poll_interval"`
	Mode           string         `yaml:"mode"`
	ClearAfterRead *bool          `yaml:"clear_after_read"`
	Timeout        *time.Duration `yaml:"timeout"`
}

// LoadFile reads a fleet file (see Parse).
func LoadFile(path string, getenv func(string) string) ([]Device, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fleet file: %w", err)
	}
	devs, err := Parse(b, filepath.Dir(path), getenv)
	if err != nil {
		return nil, fmt.Errorf("fleet file %s: %w", path, err)
	}
	return devs, nil
}

// Parse reads a fleet file:
//
//	defaults:                  # optional; any device field except serial and address
//	  site: hq
//	  time_zone: Europe/Berlin
//	  poll_interval: 5m
//	devices:
//	  - serial: CQUJ190460155  # required, unique
//	    address: 10.20.1.31    # required: host name or IP
//	    port: 4370             # default 4370
//	    transport: tcp         # tcp (default) or udp
//	    comm_key_env: ZK_KEY_HQ  # the key from this environment variable, or
//	    comm_key_file: hq.key    # from this file (relative to the fleet file)
//	    site: hq               # required (here or in defaults)
//	    time_zone: Europe/Berlin # IANA zone the device clock is set to
//	    poll_interval: 5m      # default 5m
//	    mode: poll             # poll (default) or live
//	    clear_after_read: false # delete the log once everything read is stored
//	    timeout: 5s            # per-request timeout (default: the fleet's)
//
// Unknown keys are errors, and so is a comm key written in the file itself.
// Comm keys are read from the environment (getenv) or from files now; a
// missing variable or file is an error. Every problem found is reported, each
// naming the device and what to fix.
func Parse(data []byte, dir string, getenv func(string) string) ([]Device, error) {
	var doc fileDoc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a valid fleet file: %w", err)
	}
	if len(doc.Devices) == 0 {
		return nil, errors.New("no devices: list them under devices:")
	}
	var errs []error
	if doc.Defaults.Serial != "" || doc.Defaults.Address != "" {
		errs = append(errs, errors.New("defaults: serial and address are per device"))
	}
	if doc.Defaults.CommKey.Kind != 0 {
		errs = append(errs, errors.New("defaults: comm_key is not allowed in the fleet file: use comm_key_env or comm_key_file"))
	}
	seen := map[string]string{} // token → serial
	devs := make([]Device, 0, len(doc.Devices))
	for i, dd := range doc.Devices {
		d, err := resolve(dd, doc.Defaults, dir, getenv)
		if err != nil {
			name := dd.Serial
			if name == "" {
				name = "without serial"
			}
			errs = append(errs, fmt.Errorf("device %d (%s): %w", i+1, name, err))
			continue
		}
		if prev, dup := seen[proto.Token(d.Serial)]; dup {
			errs = append(errs, fmt.Errorf("device %d (%s): serial listed twice (or differs from %q only in punctuation)", i+1, d.Serial, prev))
			continue
		}
		seen[proto.Token(d.Serial)] = d.Serial
		devs = append(devs, d)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return devs, nil
}

// resolve merges a device entry with the defaults and validates it.
func resolve(dd, def deviceDoc, dir string, getenv func(string) string) (Device, error) {
	pick := func(v, fallback string) string {
		if v != "" {
			return v
		}
		return fallback
	}
	var errs []error
	d := Device{Serial: strings.TrimSpace(dd.Serial), Host: strings.TrimSpace(dd.Address)}
	if d.Serial == "" {
		errs = append(errs, errors.New("serial is required"))
	}
	if d.Host == "" {
		errs = append(errs, errors.New("address is required (host name or IP, without the port)"))
	} else if _, _, err := net.SplitHostPort(d.Host); err == nil {
		errs = append(errs, errors.New("address must not include the port: use port:"))
	}
	d.Port = DefaultPort
	if p := firstPtr(dd.Port, def.Port); p != nil {
		d.Port = *p
	}
	if d.Port < 1 || d.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d: want 1–65535", d.Port))
	}
	switch t := strings.ToLower(pick(dd.Transport, def.Transport)); t {
	case "", "tcp":
	case "udp":
		d.UDP = true
	default:
		errs = append(errs, fmt.Errorf("transport %q: want tcp or udp", t))
	}
	if dd.CommKey.Kind != 0 {
		errs = append(errs, errors.New("comm_key is not allowed in the fleet file: put the key in an environment variable (comm_key_env) or a file (comm_key_file)"))
	}
	keyEnv, keyFile := dd.CommKeyEnv, dd.CommKeyFile
	if keyEnv == "" && keyFile == "" {
		keyEnv, keyFile = def.CommKeyEnv, def.CommKeyFile
	}
	switch {
	case keyEnv != "" && keyFile != "":
		errs = append(errs, errors.New("comm_key_env and comm_key_file are alternatives: give one"))
	case keyEnv != "":
		v := getenv(keyEnv)
		if v == "" {
			errs = append(errs, fmt.Errorf("comm_key_env: environment variable %s is not set", keyEnv))
		} else if k, err := ParseCommKey(v); err != nil {
			errs = append(errs, fmt.Errorf("comm_key_env %s: %w", keyEnv, err))
		} else {
			d.CommKey = NewCommKey(k, "env "+keyEnv)
		}
	case keyFile != "":
		path := keyFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("comm_key_file: %w", err))
		} else if k, err := ParseCommKey(string(b)); err != nil {
			errs = append(errs, fmt.Errorf("comm_key_file %s: %w", path, err))
		} else {
			d.CommKey = NewCommKey(k, "file "+path)
		}
	}
	d.Site = strings.TrimSpace(pick(dd.Site, def.Site))
	if d.Site == "" {
		errs = append(errs, errors.New("site is required (here or in defaults)"))
	}
	d.TimeZone = pick(dd.TimeZone, def.TimeZone)
	d.Location = time.UTC
	if d.TimeZone != "" {
		loc, err := time.LoadLocation(d.TimeZone)
		if err != nil {
			errs = append(errs, fmt.Errorf("time_zone %q: want an IANA zone such as Europe/Berlin", d.TimeZone))
		} else {
			d.Location = loc
		}
	}
	d.PollInterval = DefaultPollInterval
	if p := firstPtr(dd.PollInterval, def.PollInterval); p != nil {
		d.PollInterval = *p
	}
	if d.PollInterval < MinPollInterval {
		errs = append(errs, fmt.Errorf("poll_interval %v: want at least %v", d.PollInterval, MinPollInterval))
	}
	switch m := Mode(strings.ToLower(pick(dd.Mode, def.Mode))); m {
	case "", ModePoll:
		d.Mode = ModePoll
	case ModeLive:
		d.Mode = ModeLive
	default:
		errs = append(errs, fmt.Errorf("mode %q: want poll or live", m))
	}
	if p := firstPtr(dd.ClearAfterRead, def.ClearAfterRead); p != nil {
		d.ClearAfterRead = *p
	}
	if p := firstPtr(dd.Timeout, def.Timeout); p != nil {
		if *p <= 0 {
			errs = append(errs, fmt.Errorf("timeout %v: want a positive duration", *p))
		}
		d.Timeout = *p
	}
	return d, errors.Join(errs...)
}

func firstPtr[T any](ps ...*T) *T {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

// clientOptions returns the zk options of a session with d.
func (d *Device) clientOptions(timeout, chunkTimeout time.Duration, retries int) []zk.Option {
	if d.Timeout > 0 {
		timeout = d.Timeout
	}
	opts := []zk.Option{zk.WithTimeout(timeout), zk.WithChunkTimeout(chunkTimeout), zk.WithRetries(retries)}
	if d.UDP {
		opts = append(opts, zk.WithUDP())
	}
	if d.CommKey.set {
		opts = append(opts, zk.WithCommKey(d.CommKey.value))
	}
	return opts
}
