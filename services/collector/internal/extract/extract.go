// Package extract is what the windowed collector sources (HTTP APIs, SQL
// tables) share: the Source contract, extracting one time window into the
// raw stream (RunWindow), the live incremental cursor kept in KV, and the
// loop that moves it forward (Incremental). Backfills run the same
// RunWindow over explicit date ranges (package backfill).
package extract

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/punchflow/punchflow/platform/metrics"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/publish"
)

// Window is the half-open time range [From, To) a source is asked for.
type Window struct {
	From, To time.Time
}

// String renders the window as "from/to" in RFC 3339 (UTC), the form used
// in errors and logs.
func (w Window) String() string {
	return w.From.UTC().Format(time.RFC3339) + "/" + w.To.UTC().Format(time.RFC3339)
}

// Reject is input a source could not turn into a record: it goes to the
// dead-letter stream with its raw bytes, so nothing is lost silently.
type Reject struct {
	// Body is the input as received (a JSON record, a row as JSON).
	Body []byte
	// Reason says what is wrong and what to fix.
	Reason string
	// Where names the input: the page URL, the table.
	Where string
	// Index is the 1-based position of the input in Where, if known.
	Index int
}

// Sink receives what a source extracts. Record may block while the
// publishing window is full; both fail only when ctx ends or the dead
// letter could not be stored.
type Sink interface {
	// Record takes a record with Source, NaturalKey, Payload and
	// (optionally) ObservedAt set; the sink stamps the run, id and version.
	Record(ctx context.Context, r proto.RawRecord) error
	Reject(ctx context.Context, r Reject) error
}

// Source is a windowed input: an HTTP API or a SQL table. Extract sends
// every record of w to sink and returns nil only when the whole window was
// read. Implementations must be safe for concurrent use, so that a backfill
// can extract several windows of one source in parallel.
type Source interface {
	Name() string
	// Kind is "api" or "sql".
	Kind() string
	// Address says where the source is (a URL without credentials, a
	// database host and table), for heartbeats and logs.
	Address() string
	Extract(ctx context.Context, w Window, sink Sink) error
}

// Errors a source wraps so that heartbeats and logs classify its failures.
var (
	// ErrUnauthorized: the source refused the credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrMalformed: the source answered something that is not what its
	// configuration describes (invalid JSON, no records array).
	ErrMalformed = errors.New("malformed response")
	// ErrUnavailable: the source kept failing (5xx, 429, network) beyond
	// its retry budget.
	ErrUnavailable = errors.New("unavailable")
)

// Classify maps an extraction error to a heartbeat error class, and says
// whether the source was reachable at all.
func Classify(err error) (class string, reachable bool) {
	var ne net.Error
	switch {
	case err == nil:
		return "", true
	case errors.Is(err, publish.ErrNotAcknowledged):
		return proto.ErrorClassPublish, true
	case errors.Is(err, ErrUnauthorized):
		return proto.ErrorClassUnauthorized, true
	case errors.Is(err, ErrMalformed):
		return proto.ErrorClassProtocol, true
	case errors.Is(err, syscall.ECONNREFUSED):
		return proto.ErrorClassRefused, false
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return proto.ErrorClassTimeout, false
	case errors.Is(err, ErrUnavailable):
		return proto.ErrorClassIO, true
	}
	return proto.ErrorClassIO, true
}

// DeadLetterer publishes a dead letter and waits for its acknowledgement
// (dispose.Disposer).
type DeadLetterer interface {
	DeadLetter(ctx context.Context, dl proto.DeadLetter, body []byte) error
}

// Deps are what extracting a window publishes to.
type Deps struct {
	Pub     publish.Publisher
	DLQ     DeadLetterer
	Metrics *metrics.Pipeline
	Log     *slog.Logger
	// Publish tunes the batch of every window; Kind and Metrics are set
	// by RunWindow.
	Publish publish.Options
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (d *Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Stats counts what one window (or run) produced.
type Stats struct {
	// Records is the number of distinct records published and acknowledged.
	Records int
	// Duplicates counts records seen again within the window (the same id:
	// an API repeating a record across pages, a look-back re-read).
	Duplicates int
	// Rejected counts inputs sent to the dead-letter stream.
	Rejected int
}

// Add sums two Stats.
func (s Stats) Add(o Stats) Stats {
	return Stats{Records: s.Records + o.Records, Duplicates: s.Duplicates + o.Duplicates, Rejected: s.Rejected + o.Rejected}
}

// RunWindow extracts w from src, publishes every record with its id as
// Nats-Msg-Id, dead-letters the rejects, and returns once JetStream
// acknowledged all of them. An error means the window is not complete
// (its records may be partly published; re-running it is safe).
func RunWindow(ctx context.Context, src Source, w Window, runID string, d Deps) (Stats, error) {
	po := d.Publish
	po.Kind, po.Metrics = proto.KindRawRecord, d.Metrics
	if po.Log == nil {
		po.Log = d.Log
	}
	s := &sink{
		src: src.Name(), runID: runID, trace: proto.NewTraceparent(), collectedAt: d.now().UTC(),
		batch: publish.NewBatch(d.Pub, po), deps: d, seen: make(map[string]struct{}),
	}
	if err := src.Extract(ctx, w, s); err != nil {
		// What was published stays published; re-running the window
		// publishes it again under the same ids, which JetStream drops.
		return s.stats, fmt.Errorf("extract %s window %s: %w", src.Name(), w, err)
	}
	if err := s.batch.Wait(ctx); err != nil {
		return s.stats, fmt.Errorf("publish %s window %s: %w", src.Name(), w, err)
	}
	s.stats.Records = s.batch.Acked()
	return s.stats, nil
}

type sink struct {
	src         string
	runID       string
	trace       string
	collectedAt time.Time
	batch       *publish.Batch
	deps        Deps
	seen        map[string]struct{}
	stats       Stats
}

func (s *sink) Record(ctx context.Context, r proto.RawRecord) error {
	r.Source, r.RunID, r.CollectedAt = s.src, s.runID, s.collectedAt
	r = proto.NewRawRecord(r)
	if s.deps.Metrics != nil {
		s.deps.Metrics.Received.WithLabelValues(proto.KindRawRecord).Inc()
	}
	if _, dup := s.seen[r.ID]; dup {
		s.stats.Duplicates++
		return nil
	}
	s.seen[r.ID] = struct{}{}
	if err := r.Validate(); err != nil {
		return s.Reject(ctx, Reject{Body: r.Payload, Reason: err.Error(), Where: s.src})
	}
	m, err := publish.RecordMsg(&r, s.trace)
	if err != nil {
		return s.Reject(ctx, Reject{Body: r.Payload, Reason: err.Error(), Where: s.src})
	}
	return s.batch.Add(ctx, m)
}

func (s *sink) Reject(ctx context.Context, r Reject) error {
	sum := sha256.Sum256(append([]byte(s.src+"\x00"), r.Body...))
	dl := proto.DeadLetter{
		Stage: proto.StageCollect, ReasonCode: proto.ReasonInvalid, Reason: r.Reason,
		OriginalSubject: proto.RawRecordSubject(s.src), SourceFile: r.Where, SourceLine: r.Index,
		FailedAt: s.deps.now().UTC(), MsgID: hex.EncodeToString(sum[:16]), CorrelationID: s.runID,
	}
	if err := s.deps.DLQ.DeadLetter(ctx, dl, r.Body); err != nil {
		return fmt.Errorf("dead-letter a record of %s: %w", s.src, err)
	}
	s.stats.Rejected++
	return nil
}
