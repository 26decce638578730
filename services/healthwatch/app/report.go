package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/logging"
	"github.com/punchflow/punchflow/platform/natsconn"
	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/services/healthwatch/internal/channel"
	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
	"github.com/punchflow/punchflow/services/healthwatch/internal/policy"
)

// Stdout is the --channel value that prints the report instead of sending it.
const Stdout = "stdout"

// runReport is `healthwatch report --now [--channel NAME|stdout]`: it reads
// the device states from KV and sends an on-demand report straight to a
// channel (with the channel's retries), to every channel of the teams that
// receive reports, or prints it. It takes the service's flags, so the same
// --config file and environment work.
func runReport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthwatch report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	cfg.register(fs)
	now := fs.Bool("now", false, "send or print a report now (required: scheduled reports are the service's job)")
	target := fs.String("channel", "", "a channel of the policy, or stdout to print; empty sends each report team's report to its channels")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	if help, err := service.Parse(fs, args, getenv, cfg.Validate); help || err != nil {
		return err
	}
	if !*now {
		return errors.New("report: give --now (the service sends the scheduled reports; this command sends one on demand)")
	}
	pol, err := loadPolicy(cfg.PolicyFile, getenv)
	if err != nil {
		return err
	}
	if *target != "" && *target != Stdout {
		if _, ok := pol.Channels[*target]; !ok {
			return fmt.Errorf("report: no channel %q in the policy (channels: %v, or stdout)", *target, pol.ChannelNames())
		}
	}
	if *target == "" && len(pol.ReportTeams()) == 0 {
		return errors.New("report: no team has reports: true in the policy; name a --channel or use --channel stdout")
	}
	log, err := logging.New(stderr, cfg.LogFormat, cfg.LogLevel, "healthwatch-report")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	nc, err := natsconn.Connect(cfg.NATS, "punchflow-healthwatch-report", log, nil)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	devs, err := readDevices(ctx, js, cfg.Topology.HealthBucket)
	if err != nil {
		return err
	}
	at := time.Now()
	comp := notify.Composer{Loc: pol.Zone, Link: pol.StatusURL}
	if *target == Stdout {
		_, err := io.WriteString(stdout, notify.Text(comp.Report(notify.BuildReport(notify.KindOnDemand, "", devs, at, pol.Zone))))
		return err
	}
	type send struct{ team, channel string }
	var sends []send
	if *target != "" {
		// The report of the team that owns the channel, or of the whole
		// fleet when several teams (or none) use it.
		var owners []string
		for _, t := range pol.Teams {
			if slices.Contains(t.Channels, *target) {
				owners = append(owners, t.Name)
			}
		}
		team := ""
		if len(owners) == 1 {
			team = owners[0]
		}
		sends = append(sends, send{team, *target})
	} else {
		for _, team := range pol.ReportTeams() {
			for _, ch := range pol.Teams[team].Channels {
				sends = append(sends, send{team, ch})
			}
		}
	}
	var errs []error
	for _, s := range sends {
		scoped := devs
		if s.team != "" {
			scoped = scope(pol, s.team, devs)
		}
		m := comp.Report(notify.BuildReport(notify.KindOnDemand, s.team, scoped, at, pol.Zone))
		m.ID = notify.ReportID(notify.KindOnDemand, s.team, at)
		if err := sendNow(ctx, pol.Channels[s.channel], m); err != nil {
			errs = append(errs, fmt.Errorf("channel %s: %w", s.channel, err))
			continue
		}
		fmt.Fprintf(stdout, "sent %q to %s\n", m.Title, pol.Channels[s.channel])
	}
	return errors.Join(errs...)
}

func sendNow(ctx context.Context, c policy.Channel, m notify.Message) error {
	s, err := channel.New(c, nil, nil)
	if err != nil {
		return err
	}
	if !s.Accepts(m.Type) {
		return fmt.Errorf("a %s channel does not take reports", c.Type)
	}
	return notify.Deliver(ctx, s, m, notify.Retry(c.Retry), nil)
}

// readDevices reads every device's state from the bucket.
func readDevices(ctx context.Context, js jetstream.JetStream, bucket string) ([]health.Device, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("state bucket %s: %w (is healthwatch provisioned on this NATS?)", bucket, err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list state: %w", err)
	}
	var out []health.Device
	for key := range lister.Keys() {
		e, err := kv.Get(ctx, key)
		if err != nil {
			continue // deleted since it was listed
		}
		var r record
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			return nil, fmt.Errorf("state %s is not readable: %w", key, err)
		}
		if r.Device != nil {
			out = append(out, *r.Device)
		}
	}
	return out, nil
}
