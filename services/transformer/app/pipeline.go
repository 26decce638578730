package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/punchflow/punchflow/platform/dispose"
	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/transformer/internal/rules"
)

// pipeline is the transformer's work on one consumer: decode, apply the
// rules, publish the clean message asynchronously, and settle the raw
// message once the clean one is acknowledged. The service and replay share it.
type pipeline struct {
	rt       *service.Runtime
	rules    *rules.Rules
	rosters  *rosters
	dispose  *dispose.Disposer
	inFlight int
	budget   int
	// replay marks every event reprocessed: the replay command re-reads
	// raw punches the service processed before.
	replay bool

	receivedPunch, receivedRecord prometheus.Counter
	publishedEvent, publishedRec  prometheus.Counter
	flags                         *prometheus.CounterVec

	// settled, when set, is called after each message is settled.
	settled func(msg jetstream.Msg, o outcome)
}

// outcome is how a message was settled.
type outcome int

const (
	outcomeRetry        outcome = iota // NakWithDelay: it comes back later
	outcomeDone                        // published and acknowledged
	outcomeDeadLettered                // in the dead-letter stream, terminated
)

func newPipeline(rt *service.Runtime, rs *rules.Rules, ros *rosters, cfg Config) *pipeline {
	p := &pipeline{
		rt: rt, rules: rs, rosters: ros,
		dispose:        dispose.New(rt.JS, proto.StageTransform, cfg.MaxDeliver, rt.Metrics, rt.Log),
		inFlight:       cfg.InFlight,
		budget:         cfg.MaxDeliver,
		receivedPunch:  rt.Metrics.Received.WithLabelValues(proto.KindRawPunch),
		receivedRecord: rt.Metrics.Received.WithLabelValues(proto.KindRawRecord),
		publishedEvent: rt.Metrics.Published.WithLabelValues(proto.KindAttendanceEvent),
		publishedRec:   rt.Metrics.Published.WithLabelValues(proto.KindCleanRecord),
		flags: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "punchflow", Subsystem: "transformer", Name: "flags_total",
			Help: "Flags put on published attendance events (unknown_user, late, dst_gap, ...)."}, []string{"flag"}),
	}
	if err := rt.Registry.Register(p.flags); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			p.flags = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return p
}

// eventBufSize fits an encoded attendance event with every field, so that
// encoding allocates its buffer once.
const eventBufSize = 1280

// outMsg is an outgoing clean message with room for its header values. Its
// buffers are reused once JetStream has answered the publish (nats.go keeps
// the message until then, to retry it), so that a steady stream of punches
// does not allocate a buffer, a header map and a message each.
type outMsg struct {
	nats.Msg
	vals [5]string
}

var outPool = sync.Pool{New: func() any {
	return &outMsg{Msg: nats.Msg{Header: make(nats.Header, 5), Data: make([]byte, 0, eventBufSize)}}
}}

// maxPooledBuf keeps a rare huge record's buffer out of the pool.
const maxPooledBuf = 64 << 10

// release returns m to the pool; m must not be used afterwards.
func (m *outMsg) release() {
	if cap(m.Data) > maxPooledBuf {
		return
	}
	h, data := m.Header, m.Data[:0]
	clear(h)
	*m = outMsg{Msg: nats.Msg{Header: h, Data: data}}
	outPool.Put(m)
}

// inflight is a message whose outcome is known (err) or awaits the
// acknowledgement of its clean message (ack).
type inflight struct {
	msg   jetstream.Msg
	out   *outMsg // released once ack has resolved
	ack   jetstream.PubAckFuture
	err   error
	kind  string
	flags []string
}

// consume runs until ctx ends, then drains: no new deliveries, every message
// already delivered is settled.
func (p *pipeline) consume(ctx context.Context, cons jetstream.Consumer) error {
	pending := make(chan inflight, p.inFlight)
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		p.settleLoop(pending)
	}()
	cc, err := cons.Consume(func(msg jetstream.Msg) { pending <- p.handle(msg) },
		jetstream.PullMaxMessages(min(p.inFlight, 500)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrConsumerDeleted) || ctx.Err() == nil {
				p.rt.Log.Warn("consume", "err", err)
			}
		}))
	if err != nil {
		close(pending)
		<-settled
		return fmt.Errorf("consume: %w", err)
	}
	<-ctx.Done()
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(p.rt.ShutdownTimeout()):
		cc.Stop()
	}
	close(pending)
	<-settled
	return nil
}

// handle transforms one raw message and publishes the result asynchronously.
func (p *pipeline) handle(msg jetstream.Msg) inflight {
	start := time.Now()
	defer func() { p.rt.Metrics.Handler.Observe(time.Since(start).Seconds()) }()
	out, kind, flags, err := p.transform(msg)
	if err != nil {
		return inflight{msg: msg, err: err}
	}
	fut, err := p.rt.JS.PublishMsgAsync(&out.Msg)
	if err != nil {
		return inflight{msg: msg, err: fault.NewTransient(fmt.Errorf("publish %s: %w", out.Subject, err))}
	}
	return inflight{msg: msg, out: out, ack: fut, kind: kind, flags: flags}
}

// transform is decode → rules → encode. Every error it returns is permanent:
// the input is invalid or breaks the rules.
func (p *pipeline) transform(msg jetstream.Msg) (*outMsg, string, []string, error) {
	lin := proto.Lineage{RawSubject: msg.Subject(), CorrelationID: msg.Headers().Get(proto.HeaderCorrelationID)}
	// A raw message delivered before may have been turned into an event
	// already, possibly under other rules: the event says so.
	reprocessed := p.replay
	if meta, err := msg.Metadata(); err == nil {
		lin.RawStream, lin.RawSequence = meta.Stream, meta.Sequence.Stream
		reprocessed = reprocessed || meta.NumDelivered > 1
	}
	var (
		subject, id, kind string
		flags             []string
		clean             proto.Message
	)
	if strings.HasPrefix(msg.Subject(), proto.PrefixRaw+".record.") {
		p.receivedRecord.Inc()
		rec, err := proto.DecodeRawRecord(msg.Data())
		if err != nil {
			return nil, "", nil, fault.NewPermanent(proto.ReasonDecode, err)
		}
		cr, err := p.rules.ApplyRecord(rec, lin)
		if err != nil {
			return nil, "", nil, fault.NewPermanent(proto.ReasonInvalid, err)
		}
		cr.ProcessedAt = time.Now().UTC()
		subject, id, kind, clean = proto.CleanRecordSubject(cr.Source), cr.ID, proto.KindCleanRecord, &cr
	} else {
		p.receivedPunch.Inc()
		punch, err := proto.DecodeRawPunch(msg.Data())
		if err != nil {
			return nil, "", nil, fault.NewPermanent(proto.ReasonDecode, err)
		}
		ev, err := p.rules.Apply(punch, p.rosters.Load(), lin)
		if err != nil {
			return nil, "", nil, fault.NewPermanent(proto.ReasonInvalid, err)
		}
		ev.ProcessedAt = time.Now().UTC()
		ev.Reprocessed = reprocessed
		subject, id, kind, flags, clean = proto.CleanAttendanceSubject(ev.Site), ev.ID, proto.KindAttendanceEvent, ev.Flags, &ev
	}
	out := outPool.Get().(*outMsg)
	var err error
	if out.Data, err = proto.AppendEncode(out.Data, clean); err != nil {
		out.release()
		return nil, "", nil, fault.NewPermanent(proto.ReasonInvalid, err)
	}
	// One backing array for the header values instead of one slice each.
	out.vals = [5]string{id, kind, proto.SchemaVersion, proto.ChildTraceparent(msg.Headers().Get(proto.HeaderTraceparent)), lin.CorrelationID}
	h := out.Header
	h[proto.HeaderMsgID] = out.vals[0:1:1]
	h[proto.HeaderType] = out.vals[1:2:2]
	h[proto.HeaderSchemaVersion] = out.vals[2:3:3]
	h[proto.HeaderTraceparent] = out.vals[3:4:4]
	if lin.CorrelationID != "" {
		h[proto.HeaderCorrelationID] = out.vals[4:5:5]
	}
	out.Subject = subject
	return out, kind, flags, nil
}

// settleLoop waits for each publish's acknowledgement and settles the input
// message: only an acknowledged clean message acks its raw message.
func (p *pipeline) settleLoop(pending <-chan inflight) {
	for in := range pending {
		err := in.err
		if in.ack != nil {
			select {
			case <-in.ack.Ok():
				if in.kind == proto.KindCleanRecord {
					p.publishedRec.Inc()
				} else {
					p.publishedEvent.Inc()
					for _, f := range in.flags {
						p.flags.WithLabelValues(f).Inc()
					}
				}
			case perr := <-in.ack.Err():
				err = fault.NewTransient(fmt.Errorf("publish clean message: %w", perr))
			}
			in.out.release()
		}
		var serr error
		if err == nil {
			serr = p.dispose.Settle(context.Background(), in.msg, nil) // an Ack: no wait
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // bounds the dead letter's publish
			serr = p.dispose.Settle(ctx, in.msg, err)
			cancel()
		}
		if serr != nil {
			p.rt.Log.Warn("settle", "subject", in.msg.Subject(), "err", serr)
		}
		if p.settled != nil {
			switch {
			case serr != nil || !p.final(in.msg, err):
				p.settled(in.msg, outcomeRetry)
			case err == nil:
				p.settled(in.msg, outcomeDone)
			default:
				p.settled(in.msg, outcomeDeadLettered)
			}
		}
	}
}

// final reports whether Settle ended the message's life: an ack, or a dead
// letter (permanent failure or the last delivery of the budget).
func (p *pipeline) final(msg jetstream.Msg, err error) bool {
	if err == nil {
		return true
	}
	if class, _ := fault.Classify(err); class == fault.Permanent {
		return true
	}
	meta, merr := msg.Metadata()
	return merr == nil && meta.NumDelivered >= uint64(p.budget)
}
