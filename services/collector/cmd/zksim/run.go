package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"

	"golang.org/x/sync/errgroup"

	"github.com/punchflow/punchflow/services/collector/internal/zksim"
)

// run is the whole zksim program. It reads the settings (flags, ZKSIM_*
// environment variables, the --config YAML file; see parseSettings),
// generates every device's users and log (device i from seed+i, serial
// <serial-prefix><i+1>, listening on the first port + i over TCP and UDP),
// prints the device list to stdout, writes the collector's device list when
// --fleet-file is given, and serves until ctx is cancelled (Ctrl-C). It then
// closes every device and returns nil. Bad settings fail before anything
// listens, with an error that says what to fix.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	s, err := parseSettings(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	specs, err := s.resolve()
	if err != nil {
		return fmt.Errorf("invalid settings:\n%w", err)
	}
	f, err := startFleet(ctx, specs)
	if err != nil {
		return err
	}
	defer f.Close()

	printFleet(stdout, f)
	if s.FleetFile != "" {
		env, err := writeFleetFile(s.FleetFile, f, s.CommKey)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "fleet file: %s\n", s.FleetFile)
		for _, e := range env {
			fmt.Fprintf(stdout, "  the collector reads comm keys from the environment: export %s\n", e)
		}
	}
	fmt.Fprintf(stdout, "serving %d devices; Ctrl-C stops\n", len(f.devices))
	<-ctx.Done()
	f.Close()
	var total zksim.Stats
	for _, d := range f.devices {
		st := d.dev.Stats()
		total.Sessions += st.Sessions
		total.ChunkReads += st.ChunkReads
		total.EventsSent += st.EventsSent
	}
	fmt.Fprintf(stdout, "stopped: %d sessions, %d chunk reads, %d live events served\n", total.Sessions, total.ChunkReads, total.EventsSent)
	return nil
}

// simFleet is a set of running simulated devices.
type simFleet struct {
	devices []fleetDevice
}

type fleetDevice struct {
	spec spec
	dev  *zksim.Device
	addr string // where it listens
}

// startFleet generates the devices (in parallel: 64 logs of 50,000 records
// take a while) and starts them listening. On failure nothing is left
// listening, and the error names the device.
func startFleet(ctx context.Context, specs []spec) (*simFleet, error) {
	f := &simFleet{devices: make([]fleetDevice, len(specs))}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, sp := range specs {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			d, err := zksim.NewDevice(sp.Config)
			if err != nil {
				return fmt.Errorf("device %d (%s): %w", i, sp.Config.SerialNumber, err)
			}
			f.devices[i] = fleetDevice{spec: sp, dev: d}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i := range f.devices {
		d := &f.devices[i]
		addr, err := d.dev.Listen(ctx, d.spec.Listen)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("device %d (%s) cannot listen on %s: %w (is another zksim or a device on that port? choose another --listen port)",
				i, d.spec.Config.SerialNumber, d.spec.Listen, err)
		}
		d.addr = addr
	}
	return f, nil
}

// Close stops every device; it is idempotent.
func (f *simFleet) Close() {
	for _, d := range f.devices {
		if d.dev != nil {
			d.dev.Close()
		}
	}
}

// printFleet writes the device list, one line per device.
func printFleet(w io.Writer, f *simFleet) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tADDRESS\tTRANSPORT\tUSERS\tRECORDS\tLAYOUT\tCOMMKEY\tSITE\tTIME ZONE\tMODE")
	for _, d := range f.devices {
		cfg := d.dev.Config()
		key := "-"
		if cfg.CommKey != 0 {
			key = "yes"
		}
		records := cfg.Records
		if cfg.Faults.FullLog {
			records = cfg.RecordCapacity
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d/%d\t%s\t%s\t%s\t%s\n", cfg.SerialNumber, d.addr, d.spec.Transport,
			cfg.Users, records, cfg.RecordSize, cfg.UserSize, key, d.spec.Site, d.spec.TimeZone, d.spec.Mode)
	}
	tw.Flush()
}
