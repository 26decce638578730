// Package status gathers what `loader status` shows for each sink: its
// recent batches (from load_batches in the sink's database), its consumer's
// lag (from JetStream) and its dead letters (from the DLQ stream), and
// renders them as a table or as JSON.
package status

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// Report is the status of every configured sink.
type Report struct {
	GeneratedAt time.Time `json:"generated_at"`
	// Window is how far back the batch counts go.
	Window string       `json:"window"`
	Sinks  []SinkStatus `json:"sinks"`
	// DeadLetters counts every dead letter of the load stage by the sink
	// that wrote it ("unknown" for letters without the sink header).
	DeadLetters DeadLetters `json:"dead_letters"`
}

// SinkStatus is one sink's part of the report.
type SinkStatus struct {
	Sink     string        `json:"sink"`
	Consumer ConsumerState `json:"consumer"`
	Batches  Batches       `json:"batches"`
	// DeadLetters counts this sink's dead letters by reason code.
	DeadLetters map[string]uint64 `json:"dead_letters"`
}

// ConsumerState is a sink's durable consumer as JetStream reports it.
type ConsumerState struct {
	Name     string   `json:"name"`
	Subjects []string `json:"subjects"`
	// Pending messages are in the stream and not yet delivered; AckPending
	// were delivered and are not yet acknowledged. Their sum is the lag.
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ack_pending"`
	Redelivered int    `json:"redelivered"`
	// DeliveredSeq and AckFloorSeq are stream sequences: the last
	// delivered, and the one below which everything is acknowledged.
	DeliveredSeq uint64 `json:"delivered_seq"`
	AckFloorSeq  uint64 `json:"ack_floor_seq"`
	Error        string `json:"error,omitempty"`
}

// Lag is Pending plus AckPending.
func (c ConsumerState) Lag() uint64 { return c.Pending + uint64(max(c.AckPending, 0)) }

// Batches sums a sink's load_batches rows within the window and lists the
// most recent ones.
type Batches struct {
	Committed  int     `json:"committed"`
	Failed     int     `json:"failed"`
	Inserted   int64   `json:"inserted"`
	Duplicates int64   `json:"duplicates"`
	Recent     []Batch `json:"recent"`
	Error      string  `json:"error,omitempty"`
}

// Batch is one load_batches row.
type Batch struct {
	ID         string    `json:"batch_id"`
	StartedAt  time.Time `json:"started_at"`
	Rows       int       `json:"rows"`
	Inserted   int       `json:"inserted"`
	Duplicates int       `json:"duplicates"`
	FirstSeq   int64     `json:"first_seq"`
	LastSeq    int64     `json:"last_seq"`
	DurationMS int64     `json:"duration_ms"`
	Outcome    string    `json:"outcome"`
	Error      string    `json:"error,omitempty"`
}

// DeadLetters counts the load stage's dead letters.
type DeadLetters struct {
	Total uint64 `json:"total"`
	// BySink maps a sink to its counts by reason code.
	BySink map[string]map[string]uint64 `json:"by_sink"`
	// Truncated says the count stopped at the scan limit.
	Truncated bool   `json:"truncated,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Dialect says how to query a sink's database.
type Dialect struct {
	Name string
	// Placeholder renders the i-th (1-based) statement parameter.
	Placeholder func(i int) string
	// Time renders an instant as the driver takes it for started_at.
	Time func(time.Time) any
}

// The dialects of the three sinks. SQLite keeps instants as RFC 3339 text
// with nine fraction digits, which sorts as time.
var (
	Postgres = Dialect{Name: "postgres", Placeholder: func(i int) string { return fmt.Sprintf("$%d", i) }, Time: func(t time.Time) any { return t }}
	MySQL    = Dialect{Name: "mysql", Placeholder: func(int) string { return "?" }, Time: func(t time.Time) any { return t.UTC() }}
	SQLite   = Dialect{Name: "sqlite", Placeholder: func(int) string { return "?" },
		Time: func(t time.Time) any { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }}
)

// ReadBatches reads sink's batches from db: the counts of those started
// since since, and the n most recent.
func ReadBatches(ctx context.Context, db *sql.DB, d Dialect, sinkName string, since time.Time, n int) (Batches, error) {
	var out Batches
	rs, err := db.QueryContext(ctx, `SELECT outcome, count(*), coalesce(sum(inserted), 0), coalesce(sum(duplicates), 0)
		FROM load_batches WHERE sink = `+d.Placeholder(1)+` AND started_at >= `+d.Placeholder(2)+` GROUP BY outcome`,
		sinkName, d.Time(since))
	if err != nil {
		return out, fmt.Errorf("count batches of %s: %w", sinkName, err)
	}
	for rs.Next() {
		var (
			outcome  string
			count    int
			ins, dup int64
		)
		if err := rs.Scan(&outcome, &count, &ins, &dup); err != nil {
			rs.Close()
			return out, fmt.Errorf("count batches of %s: %w", sinkName, err)
		}
		switch outcome {
		case sink.OutcomeCommitted:
			out.Committed, out.Inserted, out.Duplicates = count, ins, dup
		case sink.OutcomeFailed:
			out.Failed = count
		}
	}
	if err := errors.Join(rs.Err(), rs.Close()); err != nil {
		return out, fmt.Errorf("count batches of %s: %w", sinkName, err)
	}
	rs, err = db.QueryContext(ctx, `SELECT batch_id, started_at, row_count, inserted, duplicates, first_seq, last_seq,
		duration_ms, outcome, coalesce(error, '')
		FROM load_batches WHERE sink = `+d.Placeholder(1)+` ORDER BY started_at DESC, batch_id DESC LIMIT `+fmt.Sprint(max(n, 0)), sinkName)
	if err != nil {
		return out, fmt.Errorf("read recent batches of %s: %w", sinkName, err)
	}
	defer rs.Close()
	for rs.Next() {
		var (
			b       Batch
			started any
		)
		if err := rs.Scan(&b.ID, &started, &b.Rows, &b.Inserted, &b.Duplicates, &b.FirstSeq, &b.LastSeq,
			&b.DurationMS, &b.Outcome, &b.Error); err != nil {
			return out, fmt.Errorf("read recent batches of %s: %w", sinkName, err)
		}
		if b.StartedAt, err = instant(started); err != nil {
			return out, fmt.Errorf("read recent batches of %s: batch %s: %w", sinkName, b.ID, err)
		}
		out.Recent = append(out.Recent, b)
	}
	if err := rs.Err(); err != nil {
		return out, fmt.Errorf("read recent batches of %s: %w", sinkName, err)
	}
	return out, nil
}

func instant(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), nil
	case string:
		return time.Parse(time.RFC3339Nano, x)
	case []byte:
		return time.Parse(time.RFC3339Nano, string(x))
	}
	return time.Time{}, fmt.Errorf("started_at of type %T", v)
}

// ReadConsumer reads the state of the durable consumer on stream. A
// consumer that does not exist (the sink never started) or a JetStream
// that does not answer is reported in Error.
func ReadConsumer(ctx context.Context, js jetstream.JetStream, stream, durable string, subjects []string) ConsumerState {
	st := ConsumerState{Name: durable, Subjects: subjects}
	c, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		st.Error = fmt.Sprintf("consumer %s on %s: %v", durable, stream, err)
		return st
	}
	info, err := c.Info(ctx)
	if err != nil {
		st.Error = fmt.Sprintf("consumer %s on %s: %v", durable, stream, err)
		return st
	}
	st.Pending, st.AckPending, st.Redelivered = info.NumPending, info.NumAckPending, info.NumRedelivered
	st.DeliveredSeq, st.AckFloorSeq = info.Delivered.Stream, info.AckFloor.Stream
	if len(info.Config.FilterSubjects) > 0 {
		st.Subjects = info.Config.FilterSubjects
	} else if info.Config.FilterSubject != "" {
		st.Subjects = []string{info.Config.FilterSubject}
	}
	return st
}

// CountDeadLetters reads the headers of the load stage's dead letters in
// stream (dlq.load.>) and counts them by sink and reason code, stopping
// after limit letters.
func CountDeadLetters(ctx context.Context, js jetstream.JetStream, stream string, limit int) DeadLetters {
	out := DeadLetters{BySink: map[string]map[string]uint64{}}
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{proto.DLQSubject(proto.StageLoad, ">")},
		HeadersOnly:    true,
	})
	if err != nil {
		out.Error = fmt.Sprintf("read dead letters in %s: %v", stream, err)
		return out
	}
	want := c.CachedInfo().NumPending
	for out.Total < want {
		if out.Total >= uint64(limit) {
			out.Truncated = true
			break
		}
		batch, err := c.Fetch(min(500, int(want-out.Total)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			out.Error = fmt.Sprintf("read dead letters in %s: %v", stream, err)
			return out
		}
		n := 0
		for m := range batch.Messages() {
			n++
			out.Total++
			h := m.Headers()
			name, reason := h.Get(proto.HeaderDLQSink), h.Get(proto.HeaderDLQReasonCode)
			if name == "" {
				name = "unknown"
			}
			if out.BySink[name] == nil {
				out.BySink[name] = map[string]uint64{}
			}
			out.BySink[name][reason]++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			out.Error = fmt.Sprintf("read dead letters in %s: %v", stream, err)
			return out
		}
		if n == 0 {
			break
		}
	}
	return out
}
