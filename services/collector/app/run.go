// Package app is the collector service: it runs the configured sources on a
// schedule, publishes what they read to the raw stream, and publishes a
// heartbeat after every run.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/punchflow/punchflow/platform/dispose"
	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/csvsource"
)

// Run is the collector's whole program; see cli.RunFunc.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("collector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	cfg.register(fs)
	if help, err := service.Parse(fs, args, getenv, cfg.Validate); help || err != nil {
		return err
	}
	rt, err := service.Start(ctx, "collector", cfg.Common, fs, stderr)
	if err != nil {
		return err
	}
	kv, err := rt.JS.KeyValue(ctx, cfg.Topology.CheckpointBucket)
	if err != nil {
		rt.Close()
		return fmt.Errorf("checkpoint bucket %s: %w (start with --provision or create it)", cfg.Topology.CheckpointBucket, err)
	}
	dl := dispose.New(rt.JS, proto.StageCollect, 0, rt.Metrics, rt.Log)
	src, err := csvsource.New(cfg.csvConfig(), rt.JS, dl, kv, rt.Metrics, rt.Log)
	if err != nil {
		rt.Close()
		return err
	}
	c := &collector{rt: rt, csv: src, poll: cfg.CSV.Poll, once: cfg.Once}
	return rt.Run(ctx, c.loop)
}

type collector struct {
	rt   *service.Runtime
	csv  *csvsource.Source
	poll time.Duration
	once bool
}

// loop runs the CSV source every poll interval until ctx ends (or once).
func (c *collector) loop(ctx context.Context) error {
	t := time.NewTicker(c.poll)
	defer t.Stop()
	for {
		c.runCSV(ctx)
		if c.once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *collector) runCSV(ctx context.Context) {
	runID := proto.NewCorrelationID()
	start := time.Now()
	res, err := c.csv.RunOnce(ctx, runID)
	hb := proto.Heartbeat{
		Source: c.csv.Name(), Kind: proto.HeartbeatSource, Address: c.csv.Dir(), RunID: runID,
		ObservedAt: time.Now().UTC(), Reachable: true,
		DurationMS: float64(time.Since(start).Microseconds()) / 1000, RecordsPublished: res.Published, RecordsRejected: res.Rejected,
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		c.rt.Log.Error("csv run failed", "source", c.csv.Name(), "run_id", runID, "err", err)
		c.rt.Metrics.Errors.WithLabelValues("csv").Inc()
		hb.ErrorClass, hb.Error = proto.ErrorClassIO, err.Error()
	}
	if res.Files > 0 || res.Rejected > 0 {
		c.rt.Log.Info("csv run", "source", c.csv.Name(), "run_id", runID, "files", res.Files, "skipped", res.Skipped,
			"published", res.Published, "rejected", res.Rejected, "duration", time.Since(start).Round(time.Millisecond))
	}
	c.publishHeartbeat(ctx, hb)
}

// publishHeartbeat publishes hb and waits for its acknowledgement; a lost
// heartbeat is logged, never fatal.
func (c *collector) publishHeartbeat(ctx context.Context, hb proto.Heartbeat) {
	hb = proto.NewHeartbeat(hb)
	data, err := proto.Encode(&hb)
	if err != nil {
		c.rt.Log.Error("encode heartbeat", "err", err)
		return
	}
	h := nats.Header{}
	h.Set(proto.HeaderMsgID, hb.ID)
	h.Set(proto.HeaderType, proto.KindHeartbeat)
	h.Set(proto.HeaderSchemaVersion, proto.SchemaVersion)
	h.Set(proto.HeaderCorrelationID, hb.RunID)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := c.rt.JS.PublishMsg(pctx, &nats.Msg{Subject: hb.Subject(), Data: data, Header: h}); err != nil {
		c.rt.Log.Warn("heartbeat not published", "source", hb.Source, "err", err)
		c.rt.Metrics.Errors.WithLabelValues("publish").Inc()
		return
	}
	c.rt.Metrics.Published.WithLabelValues(proto.KindHeartbeat).Inc()
}
