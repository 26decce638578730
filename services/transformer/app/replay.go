package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/services/transformer/internal/rules"
)

// runReplay re-processes RAW from a point in time under the current rules
// (and roster) on a consumer of its own, printing progress to stdout, and
// returns once it has caught up with what RAW held when it started. The
// outputs have the ids the live transformer would give them under the same
// rules and roster, so a replay under unchanged rules adds nothing
// downstream, and one under new rules adds the new version of each record.
func runReplay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("transformer replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg ReplayConfig
	cfg.register(fs)
	if help, err := service.Parse(fs, args, getenv, func() error { return cfg.validate(time.Now()) }); help || err != nil {
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
	ros, rosterWorker, err := openRoster(ctx, rt, cfg.Config)
	if err != nil {
		rt.Close()
		return err
	}
	r := &replay{cfg: cfg, rules: rs, stdout: stdout, rt: rt}
	r.pipeline = newPipeline(rt, rs, ros, cfg.Config)
	r.pipeline.replay = true
	r.pipeline.settled = r.count
	if err := r.open(ctx); err != nil {
		rt.Close()
		return err
	}
	workers := []service.Worker{r.run}
	if rosterWorker != nil {
		// The roster follows changes during a long replay too, but stops
		// with it: the replay worker cancels the others when it is done.
		workers = append(workers, rosterWorker)
	}
	runCtx, stop := context.WithCancel(ctx)
	r.stop = stop
	defer stop()
	if err := rt.Run(runCtx, workers...); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("replay interrupted after %d of %d messages: run it again to finish (outputs are idempotent)", r.done.Load(), r.total)
	}
	return nil
}

type replay struct {
	cfg      ReplayConfig
	rules    *rules.Rules
	rt       *service.Runtime
	pipeline *pipeline
	stdout   io.Writer
	stop     context.CancelFunc

	stream  jetstream.Stream
	cons    jetstream.Consumer
	name    string
	lastSeq uint64 // RAW's last sequence when the replay started
	total   uint64 // matching messages from --since up to lastSeq, as first counted
	done    atomic.Uint64
	dead    atomic.Uint64
}

// count is the pipeline's settle hook: it counts messages whose processing
// ended (published, or dead-lettered).
func (r *replay) count(_ jetstream.Msg, o outcome) {
	switch o {
	case outcomeDone:
		r.done.Add(1)
	case outcomeDeadLettered:
		r.done.Add(1)
		r.dead.Add(1)
	}
}

// open creates the replay's own consumer, starting at --since.
func (r *replay) open(ctx context.Context) error {
	var err error
	if r.stream, err = r.rt.JS.Stream(ctx, r.cfg.Topology.RawStream); err != nil {
		return fmt.Errorf("replay: stream %s: %w", r.cfg.Topology.RawStream, err)
	}
	info, err := r.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("replay: stream %s: %w", r.cfg.Topology.RawStream, err)
	}
	r.lastSeq = info.State.LastSeq
	var b [6]byte
	_, _ = rand.Read(b[:])
	r.name = "transformer-replay-" + hex.EncodeToString(b[:])
	since := r.cfg.Since
	r.cons, err = r.rt.JS.CreateConsumer(ctx, r.cfg.Topology.RawStream, jetstream.ConsumerConfig{
		Name:              r.name,
		Description:       fmt.Sprintf("punchflow transformer replay since %s under rules %s", since.Format(time.RFC3339), r.rules.Version),
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &since,
		FilterSubjects:    r.cfg.Subjects,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           r.cfg.AckWait,
		MaxDeliver:        r.cfg.MaxDeliver,
		MaxAckPending:     r.cfg.MaxAckPending,
		InactiveThreshold: 10 * time.Minute, // removed by the server if the replay dies
	})
	if err != nil {
		return fmt.Errorf("replay: create consumer on %s: %w", r.cfg.Topology.RawStream, err)
	}
	ci, err := r.cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("replay: consumer %s: %w", r.name, err)
	}
	r.total = ci.NumPending
	fmt.Fprintf(r.stdout, "replay: %d message(s) on %v since %s (RAW sequence up to %d) under rules %s, consumer %s\n",
		r.total, r.cfg.Subjects, since.Format(time.RFC3339), r.lastSeq, r.rules.Version, r.name)
	return nil
}

// caughtUp reports whether every matching message up to lastSeq has been
// settled for good: the consumer's acknowledgement floor has passed lastSeq,
// or nothing is left to deliver and nothing awaits settlement.
func (r *replay) caughtUp(ctx context.Context) (bool, *jetstream.ConsumerInfo, error) {
	ci, err := r.cons.Info(ctx)
	if err != nil {
		return false, nil, err
	}
	return ci.AckFloor.Stream >= r.lastSeq || (ci.NumPending == 0 && ci.NumAckPending == 0), ci, nil
}

// run consumes until caught up, printing progress, then deletes the
// consumer and stops the other workers.
func (r *replay) run(ctx context.Context) error {
	defer r.stop()
	consumeCtx, stopConsume := context.WithCancel(ctx)
	consumed := make(chan error, 1)
	go func() { consumed <- r.pipeline.consume(consumeCtx, r.cons) }()

	start := time.Now()
	tick := time.NewTicker(r.cfg.Progress)
	defer tick.Stop()
	var finished bool
	for !finished {
		select {
		case <-ctx.Done():
			stopConsume()
			<-consumed
			return nil
		case err := <-consumed:
			stopConsume()
			return err
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, ci, err := r.caughtUp(cctx)
		cancel()
		if err != nil {
			r.rt.Log.Warn("replay: consumer info", "err", err)
			continue
		}
		finished = ok
		r.progress(start, ci.NumPending, ci.NumAckPending)
	}
	stopConsume()
	if err := <-consumed; err != nil {
		return err
	}
	r.progress(start, 0, 0)
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.rt.JS.DeleteConsumer(dctx, r.cfg.Topology.RawStream, r.name); err != nil {
		r.rt.Log.Warn("replay: delete consumer (the server removes it after 10m of inactivity)", "consumer", r.name, "err", err)
	}
	fmt.Fprintf(r.stdout, "replay: caught up: %d message(s) processed (%d dead-lettered) in %v\n", r.done.Load(), r.dead.Load(), time.Since(start).Round(time.Millisecond))
	return nil
}

func (r *replay) progress(start time.Time, pending uint64, ackPending int) {
	done := r.done.Load()
	el := time.Since(start).Seconds()
	pct := 100.0
	if r.total > 0 {
		pct = min(100, 100*float64(done)/float64(r.total))
	}
	fmt.Fprintf(r.stdout, "replay: %d/%d (%.0f%%) processed, %.0f/s, %d pending, %d awaiting settlement, %d dead-lettered\n",
		done, r.total, pct, float64(done)/max(el, 1e-9), pending, ackPending, r.dead.Load())
}
