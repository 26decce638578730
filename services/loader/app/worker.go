package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-retry"

	"github.com/punchflow/punchflow/platform/dispose"
	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/batch"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// worker loads one sink from its own durable consumer.
type worker struct {
	name    string
	sink    sink.Sink
	cons    jetstream.Consumer
	rt      *service.Runtime
	policy  batch.Policy
	ackWait time.Duration
	dispose *dispose.Disposer
	log     *slog.Logger
	seq     uint64 // batch counter, for batch ids
	runID   string
}

// item is a delivered message with its decoded event.
type item struct {
	msg jetstream.Msg
	ev  sink.Event
}

// run batches deliveries until ctx ends, then drains: no new deliveries,
// what was delivered is flushed (or left to redeliver elsewhere).
func (w *worker) run(ctx context.Context) error {
	w.runID = proto.NewCorrelationID()[:12]
	in := make(chan jetstream.Msg, w.policy.MaxRows)
	stopped := make(chan struct{})
	cc, err := w.cons.Consume(func(m jetstream.Msg) {
		select {
		case in <- m:
		case <-stopped:
		}
	},
		jetstream.PullMaxMessages(w.policy.MaxRows),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { w.log.Warn("consume", "err", err) }))
	if err != nil {
		return fmt.Errorf("consume for sink %s: %w", w.name, err)
	}
	buf := batch.New[jetstream.Msg](w.policy)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	flush := func(ctx context.Context) {
		if buf.Len() > 0 {
			w.flush(ctx, buf.Take())
		}
	}
	for {
		select {
		case m := <-in:
			if full := buf.Add(m, len(m.Data()), time.Now()); full {
				flush(ctx)
			} else if buf.Len() == 1 {
				timer.Reset(w.policy.MaxAge)
			}
		case <-timer.C:
			flush(ctx)
		case <-ctx.Done():
			w.drain(cc, in, buf)
			close(stopped)
			return nil
		}
	}
}

// drain stops deliveries and flushes what already arrived, within the
// shutdown budget. Messages still unflushed at the deadline are left
// unacknowledged and redeliver after AckWait.
func (w *worker) drain(cc jetstream.ConsumeContext, in <-chan jetstream.Msg, buf *batch.Buffer[jetstream.Msg]) {
	cc.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), w.rt.ShutdownTimeout())
	defer cancel()
loop:
	for {
		select {
		case m := <-in:
			if buf.Add(m, len(m.Data()), time.Now()) {
				w.flush(ctx, buf.Take())
			}
		case <-cc.Closed():
			break loop
		case <-ctx.Done():
			cc.Stop()
			break loop
		}
	}
	for len(in) > 0 {
		buf.Add(<-in, 0, time.Now())
	}
	if buf.Len() > 0 {
		w.flush(ctx, buf.Take())
	}
}

// flush decodes a batch, dead-letters what cannot be decoded, writes the rest
// and settles every message.
func (w *worker) flush(ctx context.Context, msgs []jetstream.Msg) {
	items := make([]item, 0, len(msgs))
	for _, m := range msgs {
		w.rt.Metrics.Received.WithLabelValues(proto.KindAttendanceEvent).Inc()
		ev, err := proto.DecodeAttendanceEvent(m.Data())
		if err != nil {
			w.settle(m, fault.NewPermanent(proto.ReasonDecode, err))
			continue
		}
		var seq uint64
		if meta, err := m.Metadata(); err == nil {
			seq = meta.Sequence.Stream
		}
		items = append(items, item{msg: m, ev: sink.Event{AttendanceEvent: ev, Seq: seq}})
	}
	if len(items) > 0 {
		w.write(ctx, items)
	}
}

// write commits items as one batch. A transient failure is retried in place
// with backoff (messages kept alive with in-progress acks) until it succeeds
// or ctx ends; a permanent failure splits the batch in halves until the
// rejected row stands alone, and that row goes to the dead-letter stream.
func (w *worker) write(ctx context.Context, items []item) {
	stop := w.keepAlive(items)
	defer stop()
	var perm error
	b := retry.WithCappedDuration(10*time.Second, retry.NewExponential(250*time.Millisecond))
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		start := time.Now()
		var err error
		_, err = w.sink.Write(ctx, w.batchOf(items))
		w.rt.Metrics.Batch.Observe(time.Since(start).Seconds())
		if err == nil {
			return nil
		}
		if class, _ := fault.Classify(err); class == fault.Permanent {
			perm = err
			return nil
		}
		w.rt.Metrics.Errors.WithLabelValues("transient").Inc()
		w.log.Warn("batch failed, retrying", "rows", len(items), "err", err)
		return retry.RetryableError(err)
	})
	switch {
	case err != nil:
		// Shutting down mid-outage: hand the messages back for redelivery.
		for _, it := range items {
			_ = it.msg.NakWithDelay(time.Second)
		}
		w.log.Warn("batch abandoned at shutdown, messages will be redelivered", "rows", len(items), "err", err)
	case perm != nil && len(items) > 1:
		w.log.Warn("batch rejected, splitting to isolate the bad row", "rows", len(items), "err", perm)
		stop()
		w.write(ctx, items[:len(items)/2])
		w.write(ctx, items[len(items)/2:])
	case perm != nil:
		w.settle(items[0].msg, perm)
	default:
		w.rt.Metrics.BatchRows.Observe(float64(len(items)))
		for _, it := range items {
			w.settle(it.msg, nil)
		}
	}
}

func (w *worker) batchOf(items []item) sink.Batch {
	w.seq++
	b := sink.Batch{
		ID:      fmt.Sprintf("%s-%s-%d", w.name, w.runID, w.seq),
		Sink:    w.name,
		Events:  make([]sink.Event, len(items)),
		Started: time.Now().UTC(),
	}
	for i, it := range items {
		b.Events[i] = it.ev
		if b.FirstSeq == 0 || it.ev.Seq < b.FirstSeq {
			b.FirstSeq = it.ev.Seq
		}
		b.LastSeq = max(b.LastSeq, it.ev.Seq)
	}
	return b
}

func (w *worker) settle(m jetstream.Msg, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := w.dispose.Settle(ctx, m, err); serr != nil {
		w.log.Warn("settle", "subject", m.Subject(), "err", serr)
	}
}

// keepAlive sends in-progress acks for items every third of AckWait until
// stopped, so that a slow commit or a retried outage never causes a
// redelivery storm. stop is idempotent.
func (w *worker) keepAlive(items []item) (stop func()) {
	done := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTicker(w.ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, it := range items {
					_ = it.msg.InProgress()
				}
			}
		}
	}()
	return func() { once.Do(func() { close(done) }) }
}
