// Package publish stores collector messages in JetStream reliably: a Batch
// publishes asynchronously, keeps a bounded window of unacknowledged
// messages, and re-publishes the ones that failed or whose acknowledgement
// did not come in time, until every message is acknowledged or the retry
// budget is spent. Re-publishing is safe because every collector message
// carries its id as Nats-Msg-Id, so JetStream drops the duplicates.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-retry"

	"github.com/punchflow/punchflow/platform/metrics"
	"github.com/punchflow/punchflow/proto"
)

// Publisher is the slice of jetstream.JetStream a Batch publishes with.
type Publisher interface {
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// ErrNotAcknowledged wraps the error of a Batch whose messages were not all
// acknowledged within the retry budget.
var ErrNotAcknowledged = errors.New("not acknowledged by JetStream")

// Options tune a Batch. Zero values select the defaults named.
type Options struct {
	// Window is how many messages may wait for their acknowledgement at
	// once (default 1024).
	Window int
	// AckTimeout is how long one acknowledgement is awaited before the
	// message counts as failed and is published again (default 10 s).
	AckTimeout time.Duration
	// Budget bounds the re-publishing of failed messages in Wait (default
	// 1 min; keep it well inside the stream's duplicate window). A zero or
	// negative budget after defaults means one attempt.
	Budget time.Duration
	// Kind labels the published counter (proto.KindRawPunch, ...).
	Kind    string
	Metrics *metrics.Pipeline
	Log     *slog.Logger
}

func (o *Options) defaults() {
	if o.Window <= 0 {
		o.Window = 1024
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 10 * time.Second
	}
	if o.Budget == 0 {
		o.Budget = time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

type pending struct {
	fut      jetstream.PubAckFuture
	deadline time.Time
}

// Batch publishes a sequence of messages and waits for their
// acknowledgements. It is not safe for concurrent use; use one per unit of
// work (an upload, a window of a source).
type Batch struct {
	pub     Publisher
	o       Options
	pending []pending // oldest first, from head
	head    int
	failed  []*nats.Msg
	lastErr error
	acked   int
}

// NewBatch returns an empty batch.
func NewBatch(pub Publisher, o Options) *Batch {
	o.defaults()
	return &Batch{pub: pub, o: o}
}

// Acked is how many messages JetStream acknowledged so far.
func (b *Batch) Acked() int { return b.acked }

// Add publishes m asynchronously, first settling the oldest message when
// Window messages are outstanding. A message the connection refuses is kept
// for Wait to re-publish. Add fails only when ctx ends.
func (b *Batch) Add(ctx context.Context, m *nats.Msg) error {
	for {
		if len(b.pending)-b.head >= b.o.Window {
			if err := b.settleOldest(ctx); err != nil {
				return err
			}
		}
		f, err := b.pub.PublishMsgAsync(m)
		switch {
		case err == nil:
			b.pending = append(b.pending, pending{fut: f, deadline: time.Now().Add(b.o.AckTimeout)})
			return nil
		case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
			// The connection's window is full (other work publishes too):
			// wait for one of ours, or briefly, and try again.
			if len(b.pending) > b.head {
				if err := b.settleOldest(ctx); err != nil {
					return err
				}
				continue
			}
			t := time.NewTimer(10 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		default:
			b.failed = append(b.failed, m)
			b.lastErr = err
			return nil
		}
	}
}

func (b *Batch) settleOldest(ctx context.Context) error {
	p := b.pending[b.head]
	b.pending[b.head] = pending{}
	b.head++
	if b.head > 4096 && b.head*2 > len(b.pending) {
		b.pending = append(b.pending[:0], b.pending[b.head:]...)
		b.head = 0
	}
	t := time.NewTimer(time.Until(p.deadline))
	defer t.Stop()
	select {
	case <-p.fut.Ok():
		b.acked++
		if b.o.Metrics != nil && b.o.Kind != "" {
			b.o.Metrics.Published.WithLabelValues(b.o.Kind).Inc()
		}
	case err := <-p.fut.Err():
		b.failed = append(b.failed, p.fut.Msg())
		b.lastErr = err
	case <-t.C:
		b.failed = append(b.failed, p.fut.Msg())
		b.lastErr = fmt.Errorf("no acknowledgement within %v", b.o.AckTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func (b *Batch) drain(ctx context.Context) error {
	for len(b.pending) > b.head {
		if err := b.settleOldest(ctx); err != nil {
			return err
		}
	}
	b.pending, b.head = b.pending[:0], 0
	return nil
}

// Wait returns once every message added was acknowledged, re-publishing
// failures with jittered exponential backoff within the budget. The error
// wraps ErrNotAcknowledged when the budget ran out, or is ctx's error. The
// batch can be reused after Wait.
func (b *Batch) Wait(ctx context.Context) error {
	if err := b.drain(ctx); err != nil {
		return err
	}
	if len(b.failed) == 0 {
		return nil
	}
	budget := max(b.o.Budget, time.Millisecond)
	bo := retry.WithMaxDuration(budget, retry.WithCappedDuration(5*time.Second, retry.WithJitterPercent(20, retry.NewExponential(100*time.Millisecond))))
	return retry.Do(ctx, bo, func(ctx context.Context) error {
		todo := b.failed
		b.failed = nil
		b.o.Log.Warn("re-publishing unacknowledged messages", "count", len(todo), "err", b.lastErr)
		for _, m := range todo {
			if err := b.Add(ctx, m); err != nil {
				return err
			}
		}
		if err := b.drain(ctx); err != nil {
			return err
		}
		if n := len(b.failed); n > 0 {
			return retry.RetryableError(fmt.Errorf("%w: %d messages: %v", ErrNotAcknowledged, n, b.lastErr))
		}
		return nil
	})
}

// Headers returns the headers every collector message carries.
func Headers(id, kind, correlationID, traceparent string) nats.Header {
	h := nats.Header{
		proto.HeaderMsgID:         {id},
		proto.HeaderType:          {kind},
		proto.HeaderSchemaVersion: {proto.SchemaVersion},
		proto.HeaderCorrelationID: {correlationID},
	}
	if traceparent != "" {
		h[proto.HeaderTraceparent] = []string{traceparent}
	}
	return h
}

// RecordMsg encodes a raw record as the message published on its subject.
func RecordMsg(r *proto.RawRecord, traceparent string) (*nats.Msg, error) {
	data, err := proto.Encode(r)
	if err != nil {
		return nil, fmt.Errorf("encode record %s of %s: %w", r.NaturalKey, r.Source, err)
	}
	return &nats.Msg{Subject: proto.RawRecordSubject(r.Source), Data: data, Header: Headers(r.ID, proto.KindRawRecord, r.RunID, traceparent)}, nil
}

// PunchMsg encodes a raw punch as the message published on its subject.
func PunchMsg(p *proto.RawPunch, traceparent string) (*nats.Msg, error) {
	data, err := proto.Encode(p)
	if err != nil {
		return nil, fmt.Errorf("encode punch of %s user %s: %w", p.DeviceSerial, p.UserID, err)
	}
	return &nats.Msg{Subject: proto.RawPunchSubject(p.Site, p.DeviceSerial), Data: data, Header: Headers(p.ID, proto.KindRawPunch, p.RunID, traceparent)}, nil
}

// SyncPublisher publishes one message and waits for its acknowledgement.
type SyncPublisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Heartbeat stamps hb (NewHeartbeat), publishes it and waits up to 5 s, or
// until ctx ends, for its acknowledgement. A caller whose last heartbeat must
// go out while it stops passes context.WithoutCancel(ctx); one that must let
// go promptly (a fleet replica losing a device's lease) passes its own ctx.
// A heartbeat that is lost is logged and counted, never fatal.
func Heartbeat(ctx context.Context, pub SyncPublisher, hb proto.Heartbeat, m *metrics.Pipeline, log *slog.Logger) {
	hb = proto.NewHeartbeat(hb)
	data, err := proto.Encode(&hb)
	if err != nil {
		log.Error("encode heartbeat", "source", hb.Source, "err", err)
		return
	}
	msg := &nats.Msg{Subject: hb.Subject(), Data: data, Header: Headers(hb.ID, proto.KindHeartbeat, hb.RunID, "")}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := pub.PublishMsg(pctx, msg); err != nil {
		log.Warn("heartbeat not published", "source", hb.Source, "err", err)
		if m != nil {
			m.Errors.WithLabelValues(proto.ErrorClassPublish).Inc()
		}
		return
	}
	if m != nil {
		m.Published.WithLabelValues(proto.KindHeartbeat).Inc()
	}
}
