package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"
	"github.com/sethvargo/go-retry"

	"github.com/punchflow/punchflow/platform/dispose"
	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/batch"
	"github.com/punchflow/punchflow/services/loader/internal/daily"
	"github.com/punchflow/punchflow/services/loader/internal/recordtable"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// worker loads one sink from its own durable consumer.
//
// Every delivered message is held (in the inbox, the batch being built or
// the batch being written) until it is settled, and the worker sends an
// in-progress ack for every held message each third of AckWait: a slow
// commit, a retried outage or a long queue behind them never lets AckWait
// expire, so nothing is redelivered while this worker lives. The consumer's
// MaxAckPending bounds how many messages are held.
type worker struct {
	name    string
	sink    sink.Sink
	cons    jetstream.Consumer
	rt      *service.Runtime
	policy  batch.Policy
	ackWait time.Duration
	dispose *dispose.Disposer
	zones   *daily.Calculator // loads and caches time zones
	tables  recordtable.Set   // typed record tables, by source
	log     *slog.Logger
	// writers bounds the batches written at once: while one transaction
	// waits on the database (a commit's flush to disk), the next batch is
	// already being written.
	writers  int
	seq      atomic.Uint64 // batch counter, for batch ids
	runID    string
	held     held
	slots    chan struct{} // a token per batch being written
	inflight sync.WaitGroup
}

// item is a delivered message with what it decoded to: an event, a record,
// or the permanent error that sends it to the dead-letter stream.
type item struct {
	msg jetstream.Msg
	ev  *sink.Event
	rec *sink.Record
	seq uint64
	err error
}

// run batches deliveries until ctx ends, then drains: no new deliveries,
// what was delivered is flushed (or handed back for redelivery).
func (w *worker) run(ctx context.Context) error {
	w.runID = proto.NewCorrelationID()[:12]
	w.slots = make(chan struct{}, max(w.writers, 1))
	// Writes outlive ctx: at shutdown the batches in flight finish, and
	// drain cancels wctx only when the shutdown budget is spent.
	wctx, stopWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWrites()
	in := newInbox()
	cc, err := w.cons.Consume(func(m jetstream.Msg) {
		w.held.add(m)
		// Decoding here, on the client's delivery goroutine, overlaps it
		// with the worker's writes.
		in.push(w.decode(m))
	},
		jetstream.PullMaxMessages(w.policy.MaxRows),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { w.log.Warn("consume", "err", err) }))
	if err != nil {
		return fmt.Errorf("consume for sink %s: %w", w.name, err)
	}
	stopKeepAlive := w.keepAlive()
	defer stopKeepAlive()

	buf := batch.New[item](w.policy)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	add := func(it item) {
		if full := buf.Add(it, len(it.msg.Data()), time.Now()); full {
			w.flush(wctx, buf.Take())
			timer.Stop()
		} else if buf.Len() == 1 {
			timer.Reset(w.policy.MaxAge)
		}
	}
	for {
		select {
		case <-in.ready:
			for _, it := range in.take() {
				add(it)
			}
		case <-timer.C:
			if buf.Len() == 0 {
				continue
			}
			if wait := time.Until(buf.Deadline()); wait > 0 {
				timer.Reset(wait)
				continue
			}
			w.flush(wctx, buf.Take())
		case <-ctx.Done():
			w.drain(wctx, stopWrites, cc, in, buf)
			return nil
		}
	}
}

// drain stops deliveries and flushes what already arrived, within the
// shutdown budget, after which it cancels ctx with stop. Messages still held
// then are handed back with a short delay, so that another replica takes
// them at once.
func (w *worker) drain(ctx context.Context, stop context.CancelFunc, cc jetstream.ConsumeContext, in *inbox, buf *batch.Buffer[item]) {
	cc.Drain()
	deadline := time.AfterFunc(w.rt.ShutdownTimeout(), stop)
	defer deadline.Stop()
	add := func(it item) {
		if buf.Add(it, len(it.msg.Data()), time.Now()) {
			w.flush(ctx, buf.Take())
		}
	}
loop:
	for {
		select {
		case <-in.ready:
			for _, it := range in.take() {
				add(it)
			}
		case <-cc.Closed():
			break loop
		case <-ctx.Done():
			cc.Stop()
			break loop
		}
	}
	for _, it := range in.take() {
		add(it)
	}
	if buf.Len() > 0 {
		w.flush(ctx, buf.Take())
	}
	w.inflight.Wait()
	if left := w.held.all(); len(left) > 0 {
		for _, m := range left {
			_ = m.NakWithDelay(time.Second)
			w.held.remove(m)
		}
		w.log.Warn("stopped with messages unwritten; handed back for redelivery", "messages", len(left))
	}
}

// flush dead-letters what could not be decoded and hands the rest to a
// writer, waiting for a free one when w.writers batches are in flight.
func (w *worker) flush(ctx context.Context, batch []item) {
	items := batch[:0]
	for _, it := range batch {
		if it.err != nil {
			w.settle(it.msg, it.err)
			continue
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return
	}
	w.slots <- struct{}{}
	w.inflight.Go(func() {
		defer func() { <-w.slots }()
		w.write(ctx, items)
	})
}

// decode turns a message into an event or a record according to its
// subject. A message that is not one the loader loads gets a permanent
// error: reason decode for bytes that are not the message its subject
// promises, invalid for an unknown subject or an unknown time zone. It is
// safe for concurrent use.
func (w *worker) decode(m jetstream.Msg) item {
	it := item{msg: m}
	if meta, err := m.Metadata(); err == nil {
		it.seq = meta.Sequence.Stream
	}
	kind := proto.SubjectKind(m.Subject())
	w.rt.Metrics.Received.WithLabelValues(kindLabel(kind)).Inc()
	switch kind {
	case proto.KindAttendanceEvent:
		ev, err := proto.DecodeAttendanceEvent(m.Data())
		if err != nil {
			it.err = fault.NewPermanent(proto.ReasonDecode, err)
			return it
		}
		if _, err := w.zones.Zone(ev.TimeZone); err != nil {
			it.err = fault.NewPermanent(proto.ReasonInvalid, fmt.Errorf("event %s: %w: not an IANA time zone", ev.ID, err))
			return it
		}
		it.ev = &sink.Event{AttendanceEvent: ev, Seq: it.seq}
	case proto.KindCleanRecord:
		rec, err := proto.Decode[wireRecord](m.Data())
		if err != nil {
			// The contract's own decoder words the error as every
			// consumer sees it.
			if _, cerr := proto.DecodeCleanRecord(m.Data()); cerr != nil {
				err = cerr
			}
			it.err = fault.NewPermanent(proto.ReasonDecode, err)
			return it
		}
		it.rec = &sink.Record{CleanRecord: rec.CleanRecord, RawFields: rec.Fields, Seq: it.seq}
		if t := w.tables[rec.Source]; t != nil {
			// Typed here, as the message arrives: a record whose fields
			// do not fit its table goes to the dead-letter stream at once,
			// without failing a batch.
			if it.rec.Typed, err = t.Values(nil, rec.Fields); err != nil {
				it.err = fault.NewPermanent(proto.ReasonInvalid, fmt.Errorf("record %s: %w", rec.ID, err))
				return it
			}
		}
	default:
		it.err = fault.NewPermanent(proto.ReasonInvalid,
			fmt.Errorf("subject %s carries no message the loader loads (clean.attendance.<site> or clean.record.<source>)", m.Subject()))
	}
	return it
}

// wireRecord is a CleanRecord whose fields stay the JSON object they
// travelled as: sinks store that object, and decoding it into Fields would
// cost time and turn every number into a float64. proto.Decode validates
// it as a CleanRecord.
type wireRecord struct {
	proto.CleanRecord
	Fields json.RawMessage `json:"fields,omitempty"`
}

func kindLabel(kind string) string {
	if kind == "" {
		return "unknown"
	}
	return kind
}

// write commits items as one batch. A transient failure is retried in place
// with backoff (the messages kept alive by keepAlive) until it succeeds or
// ctx ends; a permanent failure splits the batch in halves until the
// rejected row stands alone, and that row goes to the dead-letter stream.
func (w *worker) write(ctx context.Context, items []item) {
	var perm error
	b := retry.WithCappedDuration(10*time.Second, retry.NewExponential(250*time.Millisecond))
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		start := time.Now()
		_, err := w.sink.Write(ctx, w.batchOf(items))
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
			w.held.remove(it.msg)
		}
		w.log.Warn("batch abandoned at shutdown, messages will be redelivered", "rows", len(items), "err", err)
	case perm != nil && len(items) > 1:
		w.log.Warn("batch rejected, splitting to isolate the bad row", "rows", len(items), "err", perm)
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
	b := sink.Batch{
		ID:      fmt.Sprintf("%s-%s-%d", w.name, w.runID, w.seq.Add(1)),
		Sink:    w.name,
		Started: time.Now().UTC(),
	}
	events := 0
	for _, it := range items {
		if it.ev != nil {
			events++
		}
	}
	if events > 0 {
		b.Events = make([]sink.Event, 0, events)
	}
	if events < len(items) {
		b.Records = make([]sink.Record, 0, len(items)-events)
	}
	for _, it := range items {
		switch {
		case it.ev != nil:
			b.Events = append(b.Events, *it.ev)
		case it.rec != nil:
			b.Records = append(b.Records, *it.rec)
		}
		if b.FirstSeq == 0 || it.seq < b.FirstSeq {
			b.FirstSeq = it.seq
		}
		b.LastSeq = max(b.LastSeq, it.seq)
	}
	return b
}

// settle acknowledges m (err nil) or dead-letters it, and stops holding it.
// Only a dead letter's publish takes a context (an ack does not wait), so
// only it gets a deadline.
func (w *worker) settle(m jetstream.Msg, err error) {
	defer w.held.remove(m)
	ctx := context.Background()
	if err != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	if serr := w.dispose.Settle(ctx, m, err); serr != nil {
		w.log.Warn("settle", "subject", m.Subject(), "err", serr)
	}
}

// keepAlive sends in-progress acks for every held message each third of
// AckWait until stopped.
func (w *worker) keepAlive() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(w.ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range w.held.all() {
					if err := m.InProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
						w.log.Debug("in-progress ack", "subject", m.Subject(), "err", err)
					}
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// held is the set of messages delivered and not yet settled. It is safe for
// concurrent use.
type held struct {
	mu   sync.Mutex
	msgs map[jetstream.Msg]struct{}
}

func (h *held) add(m jetstream.Msg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.msgs == nil {
		h.msgs = map[jetstream.Msg]struct{}{}
	}
	h.msgs[m] = struct{}{}
}

func (h *held) remove(m jetstream.Msg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.msgs, m)
}

func (h *held) all() []jetstream.Msg {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]jetstream.Msg, 0, len(h.msgs))
	for m := range h.msgs {
		out = append(out, m)
	}
	return out
}

// inbox passes deliveries from the consume callback, which never blocks,
// to the worker's loop. Its size is bounded by the consumer's
// MaxAckPending.
type inbox struct {
	mu    sync.Mutex
	items []item
	spare []item        // the slice take returned before, reused
	ready chan struct{} // a token when items may be non-empty
}

func newInbox() *inbox { return &inbox{ready: make(chan struct{}, 1)} }

func (b *inbox) push(it item) {
	b.mu.Lock()
	b.items = append(b.items, it)
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// take returns the items pushed since the last take. The slice is valid
// until the next take, which reuses it.
func (b *inbox) take() []item {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.items
	clear(b.spare)
	b.items, b.spare = b.spare[:0], out
	return out
}
