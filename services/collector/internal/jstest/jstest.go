// Package jstest is test plumbing for the collector's sources: an embedded
// JetStream server with punchflow's topology (platform/natstest and
// platform/topology), and readers of what landed in a stream.
package jstest

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/punchflow/punchflow/platform/dispose"
	"github.com/punchflow/punchflow/platform/metrics"
	"github.com/punchflow/punchflow/platform/natstest"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
)

// Env is a running JetStream with the topology provisioned.
type Env struct {
	URL     string
	NC      *nats.Conn
	JS      jetstream.JetStream
	KV      jetstream.KeyValue // the checkpoint bucket
	Topo    topology.Config
	Metrics *metrics.Pipeline
	DLQ     *dispose.Disposer
	Log     *slog.Logger
}

// Start starts an embedded server for tb (stopped at cleanup), provisions
// the topology with its defaults (memory storage when memory is true) and
// connects.
func Start(tb testing.TB, memory bool) *Env {
	tb.Helper()
	ns := natstest.Run(tb)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		tb.Fatal(err)
	}
	var topo topology.Config
	fs := flag.NewFlagSet("jstest", flag.ContinueOnError)
	topo.RegisterFlags(fs)
	topo.Memory = memory
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := topology.Ensure(ctx, js, topo); err != nil {
		tb.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, topo.CheckpointBucket)
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := metrics.NewPipeline(prometheus.NewRegistry(), "collector")
	return &Env{URL: ns.ClientURL(), NC: nc, JS: js, KV: kv, Topo: topo, Metrics: m,
		DLQ: dispose.New(js, proto.StageCollect, 0, m, log), Log: log}
}

// Msgs returns every message of stream whose subject matches filter ("" for
// all), in stream order.
func (e *Env) Msgs(tb testing.TB, stream, filter string) []jetstream.Msg {
	tb.Helper()
	cfg := jetstream.OrderedConsumerConfig{}
	if filter != "" {
		cfg.FilterSubjects = []string{filter}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := e.JS.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	var out []jetstream.Msg
	for {
		b, err := c.FetchNoWait(1000)
		if err != nil {
			tb.Fatal(err)
		}
		n := 0
		for m := range b.Messages() {
			out = append(out, m)
			n++
		}
		if n == 0 {
			return out
		}
	}
}

// Count is the number of messages stream holds on subjects matching filter.
func (e *Env) Count(tb testing.TB, stream, filter string) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.JS.Stream(ctx, stream)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		tb.Fatal(err)
	}
	if filter == "" {
		return int(info.State.Msgs)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}
