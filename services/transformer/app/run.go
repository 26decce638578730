// Package app is the transformer service: one durable pull consumer on the
// raw stream shared by every replica, the pure rules core, the roster, and
// publishes to the clean stream. It keeps no state of its own.
//
// Besides the service, Run handles three commands:
//
//	transformer rules check FILE [--roster FILE]
//	transformer rules explain FILE --punch '{...}' [--roster FILE]
//	transformer replay --since TIME [--subjects ...] --rules FILE [service flags]
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/transformer/internal/roster"
	"github.com/punchflow/punchflow/services/transformer/internal/rules"
)

// Run is the transformer's whole program; see cli.RunFunc. The first
// argument may name a command (rules, replay); otherwise it runs the service.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "rules":
			return runRules(args[1:], stdout, stderr)
		case "replay":
			return runReplay(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	return runService(ctx, args, getenv, stderr)
}

func runService(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("transformer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		_, _ = io.WriteString(stderr, "Usage: transformer [flags]\n       transformer rules check FILE [--roster FILE]\n       transformer rules explain FILE --punch JSON [--roster FILE]\n       transformer replay --since TIME [--subjects LIST] --rules FILE [flags]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var cfg Config
	cfg.register(fs, ":8082")
	if help, err := service.Parse(fs, args, getenv, cfg.Validate); help || err != nil {
		return err
	}
	rs, err := rules.Load(cfg.RulesFile)
	if err != nil {
		return err
	}
	if err := checkRosterFile(cfg.Roster.File); err != nil {
		return err
	}
	rt, err := service.Start(ctx, "transformer", cfg.Common, fs, stderr)
	if err != nil {
		return err
	}
	rt.Log.Info("rules loaded", "file", cfg.RulesFile, "rules_version", rs.Version, "sites", len(rs.Sites), "shifts", len(rs.Shifts), "record_sources", len(rs.Records))
	ros, rosterWorker, err := openRoster(ctx, rt, cfg)
	if err != nil {
		rt.Close()
		return err
	}
	cons, err := rt.BindConsumer(ctx, cfg.Topology.RawStream, topology.Consumer(topology.ConsumerOptions{
		Durable:        cfg.Durable,
		FilterSubjects: []string{proto.PrefixRaw + ".punch.>", proto.PrefixRaw + ".record.>"},
		AckWait:        cfg.AckWait,
		MaxDeliver:     cfg.MaxDeliver,
		MaxAckPending:  cfg.MaxAckPending,
	}))
	if err != nil {
		rt.Close()
		return err
	}
	p := newPipeline(rt, rs, ros, cfg)
	workers := []service.Worker{func(ctx context.Context) error { return p.consume(ctx, cons) }}
	if rosterWorker != nil {
		workers = append(workers, rosterWorker)
	}
	return rt.Run(ctx, workers...)
}

// openRoster loads the configured roster before any message is handled and
// returns the worker that keeps it current (nil when none is configured).
func openRoster(ctx context.Context, rt *service.Runtime, cfg Config) (*rosters, service.Worker, error) {
	ros := newRosters(rt.Registry, rt.Log)
	switch {
	case cfg.Roster.File != "":
		f := &fileRoster{path: cfg.Roster.File, poll: cfg.Roster.Poll, into: ros}
		if err := f.load(); err != nil {
			return nil, nil, err
		}
		return ros, f.run, nil
	case cfg.Roster.KV:
		k, err := startKVRoster(ctx, rt.JS, cfg.Topology.RosterBucket, ros)
		if err != nil {
			return nil, nil, err
		}
		return ros, k.run, nil
	}
	rt.Log.Info("no roster configured: device users are not looked up (give --roster FILE or --roster-kv)")
	return ros, nil, nil
}

// checkRosterFile fails fast, before connecting, on a roster file that
// cannot be read or parsed.
func checkRosterFile(path string) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("roster: %w", err)
	}
	_, err = roster.Parse(path, b)
	return err
}

// errRejected is returned by the rules commands when the file or the punch
// does not pass, after the details were printed.
var errRejected = errors.New("rejected")
