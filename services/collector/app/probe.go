package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/fleet"
)

// runProbe is "collector probe --device HOST:PORT [--udp] [--commkey K]":
// it connects to one device, reads its identity, clock, counts, users and
// whole log (publishing nothing), and prints what it found, including the
// record layouts the collector will use. It is the onboarding check for a
// new device; it exits with an error that says what to fix when the device
// cannot be read.
func runProbe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("collector probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("device", "", "the device's address, HOST:PORT (port 4370 usually)")
	udp := fs.Bool("udp", false, "speak UDP instead of TCP")
	key := fs.String("commkey", "", "the device's comm key (numeric), when it has one")
	keyEnv := fs.String("commkey-env", "", "read the comm key from this environment variable instead")
	timeout := fs.Duration("timeout", 5*time.Second, "per-request timeout")
	zone := fs.String("time-zone", "Local", "IANA zone the device clock is set to, for the clock offset")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: collector probe --device HOST:PORT [--udp] [--commkey K | --commkey-env VAR] [--timeout 5s] [--time-zone ZONE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("probe: %w", err)
	}
	if *addr == "" {
		fs.Usage()
		return errors.New("probe: --device HOST:PORT is required")
	}
	o := fleet.ProbeOptions{UDP: *udp, Timeout: *timeout}
	if *key != "" && *keyEnv != "" {
		return errors.New("probe: --commkey and --commkey-env are alternatives: give one")
	}
	if *keyEnv != "" {
		*key = getenv(*keyEnv)
		if *key == "" {
			return fmt.Errorf("probe: environment variable %s is not set", *keyEnv)
		}
	}
	if *key != "" {
		k, err := fleet.ParseCommKey(*key)
		if err != nil {
			return fmt.Errorf("probe: --commkey: %w", err)
		}
		o.CommKey = &k
	}
	loc, err := time.LoadLocation(*zone)
	if err != nil {
		return fmt.Errorf("probe: --time-zone %q: want an IANA zone such as Europe/Berlin", *zone)
	}
	o.Location = loc
	r, err := fleet.Probe(ctx, *addr, o)
	if err != nil {
		return fmt.Errorf("probe %s: %w", *addr, err)
	}
	return r.WriteText(stdout)
}
