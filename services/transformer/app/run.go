// Package app is the transformer service: one durable pull consumer on the
// raw stream shared by every replica, the pure rules core, and publishes to
// the clean stream. It keeps no state of its own.
package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/dispose"
	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/transformer/internal/rules"
)

// Run is the transformer's whole program; see cli.RunFunc.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("transformer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	cfg.register(fs)
	if help, err := service.Parse(fs, args, getenv, cfg.Validate); help || err != nil {
		return err
	}
	rs, err := rules.Load(cfg.RulesFile)
	if err != nil {
		return err
	}
	rt, err := service.Start(ctx, "transformer", cfg.Common, fs, stderr)
	if err != nil {
		return err
	}
	rt.Log.Info("rules loaded", "file", cfg.RulesFile, "rules_version", rs.Version, "sites", len(rs.Sites))
	cons, err := rt.BindConsumer(ctx, cfg.Topology.RawStream, topology.Consumer(topology.ConsumerOptions{
		Durable:        cfg.Durable,
		FilterSubjects: []string{proto.PrefixRaw + ".punch.>"},
		AckWait:        cfg.AckWait,
		MaxDeliver:     cfg.MaxDeliver,
		MaxAckPending:  cfg.MaxAckPending,
	}))
	if err != nil {
		rt.Close()
		return err
	}
	t := &transformer{
		rt:      rt,
		rules:   rs,
		cfg:     cfg,
		dispose: dispose.New(rt.JS, proto.StageTransform, cfg.MaxDeliver, rt.Metrics, rt.Log),
	}
	return rt.Run(ctx, func(ctx context.Context) error { return t.consume(ctx, cons) })
}

type transformer struct {
	rt      *service.Runtime
	rules   *rules.Rules
	cfg     Config
	dispose *dispose.Disposer
}

// inflight is a message whose outcome is known (err) or awaits the
// acknowledgement of its clean event (ack).
type inflight struct {
	msg jetstream.Msg
	ack jetstream.PubAckFuture
	err error
}

// consume runs until ctx ends, then drains: no new deliveries, every message
// already delivered is settled.
func (t *transformer) consume(ctx context.Context, cons jetstream.Consumer) error {
	pending := make(chan inflight, t.cfg.InFlight)
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		t.settleLoop(pending)
	}()
	cc, err := cons.Consume(func(msg jetstream.Msg) { pending <- t.handle(msg) },
		jetstream.PullMaxMessages(min(t.cfg.InFlight, 500)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			t.rt.Log.Warn("consume", "err", err)
		}))
	if err != nil {
		close(pending)
		<-settled
		return fmt.Errorf("consume %s: %w", t.cfg.Durable, err)
	}
	<-ctx.Done()
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(t.rt.ShutdownTimeout()):
		cc.Stop()
	}
	close(pending)
	<-settled
	return nil
}

// handle transforms one raw punch and publishes the result asynchronously.
func (t *transformer) handle(msg jetstream.Msg) inflight {
	start := time.Now()
	defer func() { t.rt.Metrics.Handler.Observe(time.Since(start).Seconds()) }()
	t.rt.Metrics.Received.WithLabelValues(proto.KindRawPunch).Inc()
	out, err := t.transform(msg)
	if err != nil {
		return inflight{msg: msg, err: err}
	}
	fut, err := t.rt.JS.PublishMsgAsync(out)
	if err != nil {
		return inflight{msg: msg, err: fault.NewTransient(fmt.Errorf("publish %s: %w", out.Subject, err))}
	}
	return inflight{msg: msg, ack: fut}
}

// transform is decode → rules → encode. Every error it returns is permanent.
func (t *transformer) transform(msg jetstream.Msg) (*nats.Msg, error) {
	p, err := proto.DecodeRawPunch(msg.Data())
	if err != nil {
		return nil, fault.NewPermanent(proto.ReasonDecode, err)
	}
	lin := proto.Lineage{RawSubject: msg.Subject(), CorrelationID: msg.Headers().Get(proto.HeaderCorrelationID)}
	if meta, err := msg.Metadata(); err == nil {
		lin.RawStream, lin.RawSequence = meta.Stream, meta.Sequence.Stream
	}
	ev, err := t.rules.Apply(p, lin)
	if err != nil {
		return nil, fault.NewPermanent(proto.ReasonInvalid, err)
	}
	ev.ProcessedAt = time.Now().UTC()
	data, err := proto.Encode(&ev)
	if err != nil {
		return nil, fault.NewPermanent(proto.ReasonInvalid, err)
	}
	h := nats.Header{}
	h.Set(proto.HeaderMsgID, ev.ID)
	h.Set(proto.HeaderType, proto.KindAttendanceEvent)
	h.Set(proto.HeaderSchemaVersion, proto.SchemaVersion)
	if lin.CorrelationID != "" {
		h.Set(proto.HeaderCorrelationID, lin.CorrelationID)
	}
	h.Set(proto.HeaderTraceparent, proto.ChildTraceparent(msg.Headers().Get(proto.HeaderTraceparent)))
	return &nats.Msg{Subject: proto.CleanAttendanceSubject(ev.Site), Data: data, Header: h}, nil
}

// settleLoop waits for each publish's acknowledgement and settles the input
// message: only an acknowledged clean event acks its raw punch.
func (t *transformer) settleLoop(pending <-chan inflight) {
	for p := range pending {
		err := p.err
		if p.ack != nil {
			select {
			case <-p.ack.Ok():
				t.rt.Metrics.Published.WithLabelValues(proto.KindAttendanceEvent).Inc()
			case perr := <-p.ack.Err():
				err = fault.NewTransient(fmt.Errorf("publish clean event: %w", perr))
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if serr := t.dispose.Settle(ctx, p.msg, err); serr != nil {
			t.rt.Log.Warn("settle", "subject", p.msg.Subject(), "err", serr)
		}
		cancel()
	}
}
