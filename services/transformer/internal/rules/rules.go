// Package rules is the transformer's pure core: a raw punch plus the payroll
// rules yields a clean attendance event or a rejection. It does no I/O.
package rules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/punchflow/punchflow/proto"
)

// Rules are the parsed rules file. A Rules value is immutable after Parse and
// safe for concurrent use.
type Rules struct {
	// Version is the first 12 hex characters of the SHA-256 of the file,
	// stamped on every output as its rules version.
	Version string
	// DefaultZone applies to sites that are not listed; nil rejects them.
	DefaultZone *time.Location
	Sites       map[string]Site
	// States maps punch state codes to directions; unmapped codes yield
	// proto.DirectionUnknown and the flag "unknown_state".
	States map[int]string
	// EarliestYear rejects punches dated before it (a device with a reset clock).
	EarliestYear int
	// MaxFuture rejects punches further than this ahead of their collection time.
	MaxFuture time.Duration
}

// Site is one site's settings.
type Site struct {
	Name string
	Zone *time.Location
}

// file is the YAML shape of a rules file.
type file struct {
	DefaultTimeZone string `yaml:"default_time_zone"`
	Sites           map[string]struct {
		TimeZone string `yaml:"time_zone"`
	} `yaml:"sites"`
	States       map[string]string `yaml:"states"`
	EarliestYear int               `yaml:"earliest_year"`
	MaxFuture    string            `yaml:"max_future"`
}

// DefaultStates is the punch-state mapping of the common ZKTeco firmware:
// 0 check-in, 1 check-out, 2 break-out, 3 break-in, 4 overtime-in,
// 5 overtime-out.
func DefaultStates() map[int]string {
	return map[int]string{
		0: proto.DirectionIn, 1: proto.DirectionOut,
		2: proto.DirectionBreakOut, 3: proto.DirectionBreakIn,
		4: proto.DirectionIn, 5: proto.DirectionOut,
	}
}

// Load reads and parses a rules file.
func Load(path string) (*Rules, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	r, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("rules file %s: %w", path, err)
	}
	return r, nil
}

// Parse parses and validates a rules file. Errors name the line and the
// field to fix; unknown fields are errors, so a typo is never ignored.
func Parse(data []byte) (*Rules, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not a valid rules file: %w", err)
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	line := func(path ...string) int { return findLine(&root, path...) }

	sum := sha256.Sum256(data)
	r := &Rules{
		Version:      hex.EncodeToString(sum[:])[:12],
		Sites:        map[string]Site{},
		States:       DefaultStates(),
		EarliestYear: 2000,
		MaxFuture:    24 * time.Hour,
	}
	var errs []error
	if f.DefaultTimeZone != "" {
		loc, err := time.LoadLocation(f.DefaultTimeZone)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: default_time_zone %q is not an IANA time zone (for example Europe/Berlin)", line("default_time_zone"), f.DefaultTimeZone))
		}
		r.DefaultZone = loc
	}
	names := make([]string, 0, len(f.Sites))
	for name := range f.Sites {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := f.Sites[name]
		if s.TimeZone == "" {
			errs = append(errs, fmt.Errorf("line %d: sites.%s.time_zone is required", line("sites", name), name))
			continue
		}
		loc, err := time.LoadLocation(s.TimeZone)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: sites.%s.time_zone %q is not an IANA time zone (for example Asia/Kolkata)", line("sites", name, "time_zone"), name, s.TimeZone))
			continue
		}
		r.Sites[name] = Site{Name: name, Zone: loc}
	}
	if len(f.States) > 0 {
		r.States = map[int]string{}
		for code, dir := range f.States {
			n, err := strconv.Atoi(code)
			if err != nil || n < 0 || n > 255 {
				errs = append(errs, fmt.Errorf("line %d: states key %q must be a punch state code from 0 to 255", line("states", code), code))
				continue
			}
			switch dir {
			case proto.DirectionIn, proto.DirectionOut, proto.DirectionBreakOut, proto.DirectionBreakIn, proto.DirectionUnknown:
			default:
				errs = append(errs, fmt.Errorf("line %d: states.%s is %q: use in, out, break_out, break_in or unknown", line("states", code), code, dir))
				continue
			}
			r.States[n] = dir
		}
	}
	if f.EarliestYear != 0 {
		if f.EarliestYear < 1970 || f.EarliestYear > 2100 {
			errs = append(errs, fmt.Errorf("line %d: earliest_year %d must be between 1970 and 2100", line("earliest_year"), f.EarliestYear))
		}
		r.EarliestYear = f.EarliestYear
	}
	if f.MaxFuture != "" {
		d, err := time.ParseDuration(f.MaxFuture)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("line %d: max_future %q must be a duration such as 24h", line("max_future"), f.MaxFuture))
		}
		r.MaxFuture = d
	}
	if r.DefaultZone == nil && len(r.Sites) == 0 {
		errs = append(errs, errors.New("no time zone at all: set default_time_zone or list sites with their time_zone"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// findLine returns the line of the node at path in a YAML document, or the
// closest ancestor's line, or 0.
func findLine(n *yaml.Node, path ...string) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	best := n.Line
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return best
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				best = n.Content[i].Line
				n = n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			return best
		}
	}
	return best
}
