// Package dispose holds the one function per consumer that settles a
// JetStream message: Ack on success, NakWithDelay with backoff on a transient
// failure, and on a permanent failure or the last delivery a dead letter
// followed by TermWithReason. A bare Nak, which redelivers at once and spins,
// is never used.
package dispose

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/platform/metrics"
	"github.com/punchflow/punchflow/proto"
)

// Publisher is the slice of jetstream.JetStream a Disposer needs.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Disposer settles messages for one consumer. It is safe for concurrent use.
type Disposer struct {
	pub     Publisher
	stage   string
	budget  int
	metrics *metrics.Pipeline
	log     *slog.Logger
	// Backoff returns the redelivery delay after the n-th failed delivery.
	Backoff func(n uint64) time.Duration
	// Sink, when set, names the loader's sink on the dead letters
	// (proto.DeadLetter.Sink); set it before the first Settle.
	Sink string
}

// New returns a Disposer for a consumer of the given stage whose deliveries
// are limited to maxDeliver (the consumer's MaxDeliver).
func New(pub Publisher, stage string, maxDeliver int, m *metrics.Pipeline, log *slog.Logger) *Disposer {
	return &Disposer{pub: pub, stage: stage, budget: maxDeliver, metrics: m, log: log, Backoff: Exponential(time.Second, time.Minute)}
}

// Exponential doubles from base up to max: base, 2·base, 4·base, ...
func Exponential(base, max time.Duration) func(n uint64) time.Duration {
	return func(n uint64) time.Duration {
		d := base
		for i := uint64(1); i < n && d < max; i++ {
			d *= 2
		}
		return min(d, max)
	}
}

// Settle acknowledges, delays or dead-letters msg according to err:
//
//   - nil: Ack.
//   - permanent (fault.Classify), or transient on the last delivery of the
//     budget: publish a dead letter carrying the original body and the reason,
//     then TermWithReason. If the dead letter cannot be published the message
//     is delayed instead, so it is never lost.
//   - transient: NakWithDelay(Backoff(deliveries)).
//
// It returns the error of the JetStream action, if any.
func (d *Disposer) Settle(ctx context.Context, msg jetstream.Msg, err error) error {
	if err == nil {
		if aerr := msg.Ack(); aerr != nil {
			return fmt.Errorf("ack %s: %w", msg.Subject(), aerr)
		}
		d.metrics.Acked.Inc()
		return nil
	}
	meta, merr := msg.Metadata()
	var delivered, seq uint64 = 1, 0
	stream := ""
	if merr == nil {
		delivered, seq, stream = meta.NumDelivered, meta.Sequence.Stream, meta.Stream
	}
	class, reason := fault.Classify(err)
	d.metrics.Errors.WithLabelValues(class.String()).Inc()
	if class == fault.Transient && (d.budget <= 0 || delivered < uint64(d.budget)) {
		delay := d.Backoff(delivered)
		d.log.Warn("transient failure, redelivering later", "subject", msg.Subject(), "seq", seq, "deliveries", delivered, "delay", delay, "err", err)
		d.metrics.Naked.Inc()
		return msg.NakWithDelay(delay)
	}
	if class == fault.Transient {
		reason = proto.ReasonRetriesSpent
	}
	if reason == "" {
		reason = proto.ReasonInvalid
	}
	dl := proto.DeadLetter{
		Stage: d.stage, ReasonCode: reason, Reason: err.Error(),
		OriginalSubject: msg.Subject(), OriginalStream: stream, OriginalSeq: seq,
		Deliveries: delivered, FailedAt: time.Now().UTC(),
		MsgID: header(msg, proto.HeaderMsgID), CorrelationID: header(msg, proto.HeaderCorrelationID),
		Sink: d.Sink,
	}
	if perr := d.DeadLetter(ctx, dl, msg.Data()); perr != nil {
		d.log.Error("dead letter not published, redelivering later", "subject", msg.Subject(), "seq", seq, "err", perr)
		d.metrics.Naked.Inc()
		return msg.NakWithDelay(d.Backoff(delivered))
	}
	return msg.TermWithReason(reason)
}

// DeadLetter publishes body to the dead-letter subject of dl, waiting for
// JetStream's acknowledgement. Collectors use it directly for input that never
// became a message (a bad CSV line, a bad device record).
func (d *Disposer) DeadLetter(ctx context.Context, dl proto.DeadLetter, body []byte) error {
	if dl.Stage == "" {
		dl.Stage = d.stage
	}
	if dl.FailedAt.IsZero() {
		dl.FailedAt = time.Now().UTC()
	}
	m := &nats.Msg{Subject: dl.Subject(), Data: body, Header: nats.Header(dl.Header())}
	if _, err := d.pub.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish dead letter to %s: %w", m.Subject, err)
	}
	d.metrics.DeadLettered.WithLabelValues(dl.ReasonCode).Inc()
	d.log.Warn("dead-lettered", "subject", dl.OriginalSubject, "reason_code", dl.ReasonCode, "reason", dl.Reason,
		"seq", dl.OriginalSeq, "file", dl.SourceFile, "line", dl.SourceLine, "correlation_id", dl.CorrelationID)
	return nil
}

func header(msg jetstream.Msg, k string) string {
	if h := msg.Headers(); h != nil {
		return h.Get(k)
	}
	return ""
}
