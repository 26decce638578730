package sink

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/daily"
)

// Committer is the database-specific half of a sink; Write wraps it with
// what every sink shares. Each database package implements it on an
// unexported type and calls Write from its Sink.Write.
type Committer interface {
	// Commit writes b in one transaction, as described by Sink.Write. path
	// names how it wrote (for example "copy" or "merge"), for logs; it may
	// be empty.
	Commit(ctx context.Context, b *Batch, started time.Time) (res Result, path string, err error)
	// RefusedData reports whether err is the database refusing the data
	// itself (a permanent failure), as opposed to failing to take it.
	RefusedData(err error) bool
	// RecordFailure stores f in load_batches, outside any transaction.
	RecordFailure(ctx context.Context, f Failure) error
}

// Failure is the load_batches row of a batch that did not commit.
type Failure struct {
	BatchID    string
	Sink       string
	Rows       int
	FirstSeq   int64 // -1 when the sequence does not fit the column
	LastSeq    int64
	Started    time.Time
	DurationMS int64
	Error      string // at most MaxErrorText bytes
}

// MaxErrorText bounds the error text stored in load_batches.
const MaxErrorText = 4000

// failureTimeout bounds recording a failed batch, which runs even when the
// caller's context is already cancelled.
const failureTimeout = 5 * time.Second

// Write is the part of Sink.Write every database shares: it validates b,
// commits it with c, and on failure classifies the error (Classify), records
// the batch as failed (best effort, logged) and returns the error naming the
// batch and the database db.
func Write(ctx context.Context, c Committer, db string, log *slog.Logger, b Batch) (Result, error) {
	if err := b.Validate(); err != nil {
		return Result{}, fault.NewPermanent(proto.ReasonInvalid, err)
	}
	began := time.Now()
	started := cmp.Or(b.Started, began)
	res, path, err := c.Commit(ctx, &b, started)
	attrs := []any{slog.String("batch", b.ID), slog.Int("events", len(b.Events)), slog.Int("records", len(b.Records))}
	if path != "" {
		attrs = append(attrs, slog.String("path", path))
	}
	if err != nil {
		err = Classify(err, c.RefusedData)
		recordFailure(ctx, c, log, &b, started, err)
		class, _ := fault.Classify(err)
		log.WarnContext(ctx, "batch failed", append(attrs, slog.String("class", class.String()), slog.Any("error", err))...)
		return Result{}, fmt.Errorf("write batch %s (%d events, %d records) to %s: %w",
			b.ID, len(b.Events), len(b.Records), db, err)
	}
	log.DebugContext(ctx, "batch committed", append(attrs,
		slog.Int("inserted", res.Inserted), slog.Int("duplicates", res.Duplicates), slog.Int("days", res.Days),
		slog.Duration("took", time.Since(began)))...)
	return res, nil
}

func recordFailure(ctx context.Context, c Committer, log *slog.Logger, b *Batch, started time.Time, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), failureTimeout)
	defer cancel()
	first, last, err := BatchSeqs(b)
	if err != nil {
		first, last = -1, -1
	}
	text := cause.Error()
	if len(text) > MaxErrorText {
		text = text[:MaxErrorText]
	}
	f := Failure{BatchID: b.ID, Sink: b.Sink, Rows: b.Len(), FirstSeq: first, LastSeq: last,
		Started: started, DurationMS: time.Since(started).Milliseconds(), Error: text}
	if err := c.RecordFailure(ctx, f); err != nil {
		log.WarnContext(ctx, "could not record failed batch", slog.String("batch", b.ID), slog.Any("error", err))
	}
}

// Classify wraps err in its fault class, once, at the database edge: the
// database refusing the data itself (refused) is permanent with reason
// proto.ReasonRejectedBySink, so that splitting the batch isolates the row;
// anything else (a lost connection, a lock, a timeout, a closed pool) is
// transient. An error already classified keeps its class.
func Classify(err error, refused func(error) bool) error {
	if err == nil {
		return nil
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	if refused(err) {
		return fault.NewPermanent(proto.ReasonRejectedBySink, err)
	}
	return fault.NewTransient(err)
}

// Refused is the permanent error for a value that cannot be stored
// faithfully; kind is "event" or "record" and id its id.
func Refused(kind, id, format string, args ...any) error {
	return fault.NewPermanent(proto.ReasonRejectedBySink,
		fmt.Errorf("%s %s: %s", kind, id, fmt.Sprintf(format, args...)))
}

// JoinFlags stores flags as one comma-separated column. A flag that is
// empty or holds a comma would not read back as itself, so it is refused.
func JoinFlags(flags []string) (string, error) {
	for _, f := range flags {
		if f == "" || strings.Contains(f, ",") {
			return "", fmt.Errorf("flag %q cannot be stored in a comma-separated list", f)
		}
	}
	return strings.Join(flags, ","), nil
}

// Seq converts a stream sequence to a signed 64-bit column value.
func Seq(u uint64) (int64, error) {
	if u > math.MaxInt64 {
		return 0, fmt.Errorf("%d does not fit in a 64-bit integer column", u)
	}
	return int64(u), nil
}

// BatchSeqs returns b's first and last CLEAN sequence as column values.
func BatchSeqs(b *Batch) (first, last int64, err error) {
	if first, err = Seq(b.FirstSeq); err != nil {
		return 0, 0, fault.NewPermanent(proto.ReasonRejectedBySink, fmt.Errorf("batch first sequence: %w", err))
	}
	if last, err = Seq(b.LastSeq); err != nil {
		return 0, 0, fault.NewPermanent(proto.ReasonRejectedBySink, fmt.Errorf("batch last sequence: %w", err))
	}
	return first, last, nil
}

// EventKeys returns the days of b's events.
func EventKeys(b *Batch) []daily.Key {
	keys := make([]daily.Key, len(b.Events))
	for i := range b.Events {
		e := &b.Events[i]
		keys[i] = daily.Key{Site: e.Site, UserID: e.UserID, WorkDate: e.WorkDate}
	}
	return keys
}

// Querier is the part of a database/sql transaction a lookup needs.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// OtherVersionDays returns the days of the other versions (same raw id,
// another id) of the events of b marked reprocessed (see Reprocessed), for
// the sinks on database/sql: a replay may have moved a punch away from
// them. query(n) is the dialect's SELECT DISTINCT of site, user_id and
// work_date (as YYYY-MM-DD) for n raw ids and then n ids as arguments;
// chunk bounds n.
func OtherVersionDays(ctx context.Context, q Querier, b *Batch, chunk int, query func(n int) string) ([]daily.Key, error) {
	rawIDs, ids := Reprocessed(b)
	var keys []daily.Key
	for start := 0; start < len(rawIDs); start += chunk {
		end := min(start+chunk, len(rawIDs))
		args := make([]any, 0, 2*(end-start))
		for _, r := range rawIDs[start:end] {
			args = append(args, r)
		}
		for _, id := range ids[start:end] {
			args = append(args, id)
		}
		rs, err := q.QueryContext(ctx, query(end-start), args...)
		if err != nil {
			return nil, fmt.Errorf("find other versions of %d reprocessed punches: %w", end-start, err)
		}
		for rs.Next() {
			var k daily.Key
			if err := rs.Scan(&k.Site, &k.UserID, &k.WorkDate); err != nil {
				rs.Close()
				return nil, fmt.Errorf("find other versions: %w", err)
			}
			keys = append(keys, k)
		}
		if err := errors.Join(rs.Err(), rs.Close()); err != nil {
			return nil, fmt.Errorf("find other versions: %w", err)
		}
	}
	return keys, nil
}
