package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
	"github.com/punchflow/punchflow/services/collector/internal/zksim"
)

// envPrefix is prepended to a flag's name, upper-cased with '-' as '_', to
// form its environment variable: --commkey is ZKSIM_COMMKEY. (The services'
// PUNCHFLOW_ prefix is not used, so that a shell set up for the collector
// does not configure the simulator.)
const envPrefix = "ZKSIM_"

// settings is the configuration of a zksim run: the fleet, the settings of
// every device, and per-device overrides. YAML keys are the flag names.
type settings struct {
	Listen       string `yaml:"listen"`
	Devices      int    `yaml:"devices"`
	SerialPrefix string `yaml:"serial-prefix"`
	FleetFile    string `yaml:"fleet-file"`
	// device holds the settings of every device.
	device `yaml:",inline"`
	// Overrides change single devices; only their YAML nodes are kept here
	// (see resolve), the strict decoding checks them as overrideDoc.
	Overrides []yaml.Node `yaml:"overrides"`

	configFile string // --config, not a YAML key
}

// device is what can be set for every device, and overridden per device.
type device struct {
	Serial         string        `yaml:"serial"` // per device only
	Seed           int64         `yaml:"seed"`
	Users          int           `yaml:"users"`
	Records        int           `yaml:"records"`
	Start          string        `yaml:"start"`
	Layout         int           `yaml:"layout"`
	UserLayout     int           `yaml:"user-layout"`
	EventSize      int           `yaml:"event-size"`
	UDP            bool          `yaml:"udp"`
	CommKey        uint32        `yaml:"commkey"`
	RTT            time.Duration `yaml:"rtt"`
	PunchRate      rate          `yaml:"punch-rate"`
	FrameGap       time.Duration `yaml:"frame-gap"`
	InlineMax      int           `yaml:"inline-max"`
	UserCapacity   int           `yaml:"user-capacity"`
	RecordCapacity int           `yaml:"record-capacity"`
	AutoEnable     bool          `yaml:"auto-enable"`
	NoBufferedRead bool          `yaml:"no-buffered-read"`
	Site           string        `yaml:"site"`
	TimeZone       string        `yaml:"time-zone"`
	Mode           string        `yaml:"mode"`
	Faults         faults        `yaml:"faults"`
}

// faults are zksim.Faults with YAML names; see zksim.Faults for each.
// The added round trip (zksim.Faults.Latency) is the device's rtt.
type faults struct {
	RefuseConnect    bool          `yaml:"refuse-connect"`
	IgnoreConnect    bool          `yaml:"ignore-connect"`
	ResetOnChunk     int           `yaml:"reset-on-chunk"`
	StallOnChunk     int           `yaml:"stall-on-chunk"`
	Stall            time.Duration `yaml:"stall"`
	ChunkDelay       time.Duration `yaml:"chunk-delay"`
	Bandwidth        int           `yaml:"bandwidth"` // bytes per second
	DropEvery        int           `yaml:"drop-every"`
	DropRate         float64       `yaml:"drop-rate"`
	GarbageBytes     int           `yaml:"garbage-bytes"`
	CorruptRecords   []int         `yaml:"corrupt-records"`
	ClockSkew        time.Duration `yaml:"clock-skew"`
	DuplicatePunches int           `yaml:"duplicate-punches"`
	FullLog          bool          `yaml:"full-log"`
	StartDisabled    bool          `yaml:"start-disabled"`
	OneSession       string        `yaml:"one-session"` // unlimited (default), refuse or block
}

// fileDoc is the strict shape of a fleet config file, used to report
// unknown keys with their line, overrides included.
type fileDoc struct {
	Listen       string `yaml:"listen"`
	Devices      int    `yaml:"devices"`
	SerialPrefix string `yaml:"serial-prefix"`
	FleetFile    string `yaml:"fleet-file"`
	device       `yaml:",inline"`
	Overrides    []overrideDoc `yaml:"overrides"`
}

// overrideDoc is one entry of overrides: the device's index (its port is
// the listen port + index) and the settings that differ.
type overrideDoc struct {
	Index  *int `yaml:"index"`
	device `yaml:",inline"`
}

// defaults returns the settings before flags, environment and file.
func defaults() settings {
	return settings{
		Listen:       "127.0.0.1:4370",
		Devices:      64,
		SerialPrefix: "SIM",
		device: device{
			Seed:       1,
			Users:      500,
			Records:    50_000,
			Layout:     zk.AttendanceSize40,
			UserLayout: zk.UserSize72,
			Site:       "sim",
			TimeZone:   "UTC",
			Mode:       "poll",
		},
	}
}

// register binds s's fields to flags of fs; the flags' defaults are s's
// current values.
func (s *settings) register(fs *flag.FlagSet) {
	fs.StringVar(&s.configFile, "config", s.configFile, "YAML fleet file with these settings (keys are the flag names) and per-device overrides")
	fs.StringVar(&s.Listen, "listen", s.Listen, "HOST:PORT of the first device; device i listens on PORT+i, TCP and UDP (port 0: any free ports)")
	fs.IntVar(&s.Devices, "devices", s.Devices, "number of devices")
	fs.StringVar(&s.SerialPrefix, "serial-prefix", s.SerialPrefix, "serial numbers are this prefix and the device number, e.g. SIM0001")
	fs.StringVar(&s.FleetFile, "fleet-file", s.FleetFile, "write the collector's device list (YAML) to this file")
	fs.Int64Var(&s.Seed, "seed", s.Seed, "seed of the first device's users and log; device i uses seed+i")
	fs.IntVar(&s.Users, "users", s.Users, "users per device")
	fs.IntVar(&s.Records, "records", s.Records, "attendance records per device")
	fs.StringVar(&s.Start, "start", s.Start, "first day of the generated logs, YYYY-MM-DD (default 2024-01-01)")
	fs.IntVar(&s.Layout, "layout", s.Layout, "attendance record size: 8, 16, 40, or more (40 padded, e.g. 49)")
	fs.IntVar(&s.UserLayout, "user-layout", s.UserLayout, "user record size: 28 or 72")
	fs.IntVar(&s.EventSize, "event-size", s.EventSize, "live event size, one of 10 12 14 32 36 37 52 (default: by layout)")
	fs.BoolVar(&s.UDP, "udp", s.UDP, "list the devices as UDP devices (they always answer both TCP and UDP)")
	fs.Func("commkey", "comm key (numeric password) of every device; 0 = none", func(v string) error {
		k, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return errors.New("want a decimal number from 0 to 4294967295")
		}
		s.CommKey = uint32(k)
		return nil
	})
	fs.DurationVar(&s.RTT, "rtt", s.RTT, "added round-trip time: every reply is delayed this long")
	fs.Var(&s.PunchRate, "punch-rate", "live punches per device, e.g. 2/s, 30/m, 100/h (0: none)")
	fs.DurationVar(&s.FrameGap, "frame-gap", s.FrameGap, "least pause between two frames a session sends (Node.js clients need 25ms)")
	fs.IntVar(&s.InlineMax, "inline-max", s.InlineMax, "largest dataset answered inline, bytes (default 1000; -1: never)")
	fs.StringVar(&s.Site, "site", s.Site, "site written to the fleet file")
	fs.StringVar(&s.TimeZone, "time-zone", s.TimeZone, "IANA zone of the device clocks (also written to the fleet file)")
	fs.StringVar(&s.Mode, "mode", s.Mode, "collector mode written to the fleet file: poll or live")
}

// parseSettings reads the settings from, in increasing precedence, the
// defaults, the YAML file named by --config (or ZKSIM_CONFIG), ZKSIM_*
// environment variables and the command line. Per-device overrides of the
// file apply on top of all of these (see resolve). It returns flag.ErrHelp
// for -h, after printing the usage to stderr.
func parseSettings(args []string, getenv func(string) string, stderr io.Writer) (settings, error) {
	// First pass: find the config file, and report bad flags early.
	probe := defaults()
	fs := flag.NewFlagSet("zksim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	probe.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: zksim [--config fleet.yaml] [--listen 127.0.0.1:4370] [--devices 64] [--users 500] [--records 50000] [--udp] [--commkey K] [--rtt 20ms] [--punch-rate 2/s] [--layout 40] [--seed N] [--fleet-file out.yaml] …")
		fmt.Fprintln(fs.Output(), "Every flag can also be set as ZKSIM_<NAME> in the environment, or as <name>: in the --config file.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return settings{}, err
	}
	if fs.NArg() > 0 {
		return settings{}, fmt.Errorf("unexpected argument %q: zksim takes only flags", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	path := probe.configFile
	if !given["config"] {
		path = getenv(envName("config"))
	}

	s := defaults()
	s.configFile = path
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return settings{}, fmt.Errorf("fleet config: %w", err)
		}
		if err := s.decodeYAML(b); err != nil {
			return settings{}, fmt.Errorf("fleet config %s: %w", path, err)
		}
	}

	// Second pass: environment, then the command line, over the file.
	fs = flag.NewFlagSet("zksim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s.register(fs)
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || f.Name == "config" {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("environment %s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return settings{}, err
	}
	if err := fs.Parse(args); err != nil {
		return settings{}, err
	}
	s.configFile = path
	return s, nil
}

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// typeName matches the Go type names in YAML errors, which mean nothing to
// someone editing the file.
var typeName = regexp.MustCompile(` in type main\.\w+`)

// decodeYAML reads a fleet config file over s. Unknown keys are errors.
func (s *settings) decodeYAML(b []byte) error {
	var strict fileDoc
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&strict); err != nil && !errors.Is(err, io.EOF) {
		msg := typeName.ReplaceAllString(err.Error(), "")
		return fmt.Errorf("%s\n(the keys are the flag names, e.g. records: 50000, punch-rate: 2/s, faults: {reset-on-chunk: 3}, and overrides: [{index: 0, …}])", msg)
	}
	for i, o := range strict.Overrides {
		if o.Index == nil {
			return fmt.Errorf("overrides[%d]: index is required: the device's position, 0 for the first (port = listen port + index)", i)
		}
	}
	if err := yaml.Unmarshal(b, s); err != nil {
		return err
	}
	return nil
}

// spec is one device of the fleet, resolved and validated.
type spec struct {
	Index     int
	Listen    string // host:port to listen on
	Transport string // tcp or udp
	Site      string
	TimeZone  string
	Mode      string
	Config    zksim.Config
}

// resolve validates s and returns the fleet's devices, with the per-device
// overrides applied. Every error names the setting, and the device when it
// is an override's, and says what is wanted.
func (s settings) resolve() ([]spec, error) {
	var errs []error
	if s.Devices < 1 {
		errs = append(errs, fmt.Errorf("devices %d: want at least 1", s.Devices))
	}
	host, port, err := splitListen(s.Listen)
	if err != nil {
		errs = append(errs, err)
	} else if last := port + s.Devices - 1; port != 0 && last > 65535 {
		errs = append(errs, fmt.Errorf("listen %s with %d devices: the last device would need port %d; lower the port or the number of devices", s.Listen, s.Devices, last))
	}
	if s.Serial != "" {
		errs = append(errs, fmt.Errorf("serial %q: serials are per device (set serial-prefix, or serial in overrides)", s.Serial))
	}
	if _, err := s.device.config(""); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	devs := make([]device, s.Devices)
	seeds := make([]int64, s.Devices)
	for i := range devs {
		devs[i] = s.device
		devs[i].Faults.CorruptRecords = slices.Clone(s.Faults.CorruptRecords)
		devs[i].Serial = fmt.Sprintf("%s%04d", s.SerialPrefix, i+1)
		seeds[i] = s.Seed + int64(i)
	}
	overridden := map[int]int{} // device index → override position
	for j := range s.Overrides {
		node := &s.Overrides[j]
		var o overrideDoc
		if err := node.Decode(&o); err != nil || o.Index == nil {
			errs = append(errs, fmt.Errorf("overrides[%d]: %v", j, err))
			continue
		}
		i := *o.Index
		if i < 0 || i >= s.Devices {
			errs = append(errs, fmt.Errorf("overrides[%d]: index %d: the fleet has %d devices, indices 0–%d", j, i, s.Devices, s.Devices-1))
			continue
		}
		if prev, dup := overridden[i]; dup {
			errs = append(errs, fmt.Errorf("overrides[%d]: index %d is already overridden by overrides[%d]; merge them", j, i, prev))
			continue
		}
		overridden[i] = j
		merged := overrideDoc{device: devs[i]}
		if err := node.Decode(&merged); err != nil {
			errs = append(errs, fmt.Errorf("overrides[%d]: %v", j, err))
			continue
		}
		devs[i] = merged.device
		if hasKey(node, "seed") {
			seeds[i] = merged.Seed
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	specs := make([]spec, s.Devices)
	serials := map[string]int{}
	for i, d := range devs {
		label := ""
		if j, ok := overridden[i]; ok {
			label = fmt.Sprintf("overrides[%d] (device %d): ", j, i)
		}
		d.Seed = seeds[i]
		cfg, err := d.config(label)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := serials[d.Serial]; dup {
			errs = append(errs, fmt.Errorf("%sserial %q is also device %d's: serials must be unique", label, d.Serial, prev))
			continue
		}
		serials[d.Serial] = i
		p := 0
		if port != 0 {
			p = port + i
		}
		tr := "tcp"
		if d.UDP {
			tr = "udp"
		}
		specs[i] = spec{Index: i, Listen: net.JoinHostPort(host, strconv.Itoa(p)), Transport: tr, Site: d.Site, TimeZone: d.TimeZone, Mode: d.Mode, Config: cfg}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return specs, nil
}

// config validates d and returns the simulator configuration. label
// prefixes the errors (which device they concern).
func (d device) config(label string) (zksim.Config, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(label+format, a...)) }
	if d.Users < 1 || d.Users > 60000 {
		bad("users %d: want 1–60000", d.Users)
	}
	if d.Records < 0 {
		bad("records %d: want 0 or more", d.Records)
	}
	if cp := cmpOr(d.RecordCapacity, 100_000); d.Records > cp {
		bad("records %d: want at most record-capacity %d (raise record-capacity)", d.Records, cp)
	}
	if cp := cmpOr(d.UserCapacity, 5000); d.Users > cp {
		bad("users %d: want at most user-capacity %d (raise user-capacity)", d.Users, cp)
	}
	if d.Layout != zk.AttendanceSize8 && d.Layout != zk.AttendanceSize16 && d.Layout < zk.AttendanceSize40 {
		bad("layout %d: want 8, 16, 40 or more (40-byte records padded, e.g. 49)", d.Layout)
	}
	if d.UserLayout != zk.UserSize28 && d.UserLayout != zk.UserSize72 {
		bad("user-layout %d: want 28 or 72", d.UserLayout)
	}
	if d.EventSize != 0 && !slices.Contains(zk.EventSizes, d.EventSize) {
		bad("event-size %d: want one of %v", d.EventSize, zk.EventSizes)
	}
	var start time.Time
	if d.Start != "" {
		t, err := time.Parse(time.DateOnly, d.Start)
		if err != nil {
			bad("start %q: want a date YYYY-MM-DD", d.Start)
		}
		start = t
	}
	for name, v := range map[string]time.Duration{"rtt": d.RTT, "frame-gap": d.FrameGap, "faults.stall": d.Faults.Stall, "faults.chunk-delay": d.Faults.ChunkDelay} {
		if v < 0 {
			bad("%s %v: want a positive duration or 0", name, v)
		}
	}
	if d.Faults.StallOnChunk > 0 && d.Faults.Stall <= 0 {
		bad("faults.stall-on-chunk %d: set faults.stall, how long that chunk stalls", d.Faults.StallOnChunk)
	}
	for _, c := range []struct {
		name string
		v    int
	}{
		{"user-capacity", d.UserCapacity}, {"record-capacity", d.RecordCapacity},
		{"faults.reset-on-chunk", d.Faults.ResetOnChunk}, {"faults.stall-on-chunk", d.Faults.StallOnChunk},
		{"faults.bandwidth", d.Faults.Bandwidth}, {"faults.drop-every", d.Faults.DropEvery},
		{"faults.garbage-bytes", d.Faults.GarbageBytes}, {"faults.duplicate-punches", d.Faults.DuplicatePunches},
	} {
		if c.v < 0 {
			bad("%s %d: want 0 or more", c.name, c.v)
		}
	}
	if r := d.Faults.DropRate; r < 0 || r >= 1 {
		bad("faults.drop-rate %v: want a probability from 0 up to (not including) 1", r)
	}
	logLen := d.Records
	if d.Faults.FullLog {
		logLen = cmpOr(d.RecordCapacity, 100_000)
	}
	for _, i := range d.Faults.CorruptRecords {
		if i < 0 || i >= logLen {
			bad("faults.corrupt-records: index %d outside the log's %d records (0–%d)", i, logLen, logLen-1)
		}
	}
	loc, err := time.LoadLocation(d.TimeZone)
	if err != nil || d.TimeZone == "" {
		bad("time-zone %q: want an IANA zone such as Europe/Berlin, or UTC", d.TimeZone)
	}
	if d.Mode != "poll" && d.Mode != "live" {
		bad("mode %q: want poll or live", d.Mode)
	}
	if strings.TrimSpace(d.Site) == "" {
		bad("site is empty: name the site the devices belong to")
	}
	var session zksim.SessionPolicy
	switch d.Faults.OneSession {
	case "", "unlimited":
		session = zksim.SessionsUnlimited
	case "refuse":
		session = zksim.SessionsRefuse
	case "block":
		session = zksim.SessionsBlock
	default:
		bad("faults.one-session %q: want unlimited, refuse or block", d.Faults.OneSession)
	}
	if err := errors.Join(errs...); err != nil {
		return zksim.Config{}, err
	}
	f := d.Faults
	cfg := zksim.Config{
		Seed:           d.Seed,
		Users:          d.Users,
		Records:        d.Records,
		Start:          start,
		RecordSize:     d.Layout,
		UserSize:       d.UserLayout,
		EventSize:      d.EventSize,
		CommKey:        d.CommKey,
		SerialNumber:   d.Serial,
		InlineMax:      d.InlineMax,
		FrameGap:       d.FrameGap,
		PunchInterval:  d.PunchRate.interval(),
		Location:       loc,
		UserCapacity:   d.UserCapacity,
		RecordCapacity: d.RecordCapacity,
		AutoEnable:     d.AutoEnable,
		NoBufferedRead: d.NoBufferedRead,
		Faults: zksim.Faults{
			RefuseConnect:    f.RefuseConnect,
			IgnoreConnect:    f.IgnoreConnect,
			ResetOnChunk:     f.ResetOnChunk,
			StallOnChunk:     f.StallOnChunk,
			Stall:            f.Stall,
			ChunkDelay:       f.ChunkDelay,
			Latency:          d.RTT,
			Bandwidth:        f.Bandwidth,
			DropEvery:        f.DropEvery,
			DropRate:         f.DropRate,
			GarbageBytes:     f.GarbageBytes,
			CorruptRecords:   slices.Clone(f.CorruptRecords),
			ClockSkew:        f.ClockSkew,
			DuplicatePunches: f.DuplicatePunches,
			FullLog:          f.FullLog,
			StartDisabled:    f.StartDisabled,
			OneSession:       session,
		},
	}
	return cfg, nil
}

func cmpOr(v, fallback int) int {
	if v != 0 {
		return v
	}
	return fallback
}

// splitListen parses --listen.
func splitListen(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("listen %q: want HOST:PORT, e.g. 127.0.0.1:4370", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("listen %q: port %q: want 0–65535", addr, p)
	}
	return host, port, nil
}

// hasKey reports whether the mapping node has the key.
func hasKey(n *yaml.Node, key string) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// rate is a punch rate such as "2/s"; the zero value is no punches.
type rate struct {
	perSecond float64
	text      string
}

// Set parses "N/s", "N/m" or "N/h" (also /sec, /min, /hour), or "0".
func (r *rate) Set(v string) error {
	v = strings.TrimSpace(v)
	if v == "" || v == "0" {
		*r = rate{}
		return nil
	}
	num, unit, ok := strings.Cut(v, "/")
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	per := map[string]float64{"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}[strings.TrimSpace(unit)]
	if !ok || err != nil || per == 0 || n <= 0 || math.IsInf(n, 0) || n/per > 1000 {
		return fmt.Errorf("punch rate %q: want a rate such as 2/s, 30/m or 100/h (at most 1000/s), or 0", v)
	}
	*r = rate{perSecond: n / per, text: v}
	return nil
}

func (r *rate) String() string {
	if r.text == "" {
		return "0"
	}
	return r.text
}

// UnmarshalYAML reads a rate from its text form.
func (r *rate) UnmarshalYAML(n *yaml.Node) error { return r.Set(n.Value) }

// interval is the pause between punches (0: none).
func (r rate) interval() time.Duration {
	if r.perSecond <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / r.perSecond)
}
