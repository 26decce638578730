package dispose

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/platform/metrics"
	"github.com/punchflow/punchflow/platform/natstest"
	"github.com/punchflow/punchflow/proto"
)

type env struct {
	js   jetstream.JetStream
	cons jetstream.Consumer
	d    *Disposer
	m    *metrics.Pipeline
}

// setup creates an IN stream with a consumer limited to three deliveries and,
// unless noDLQ, the DLQ stream.
func setup(t *testing.T, noDLQ bool) *env {
	t.Helper()
	ns := natstest.Run(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "IN", Subjects: []string{"raw.>"}}); err != nil {
		t.Fatal(err)
	}
	if !noDLQ {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "DLQ", Subjects: []string{"dlq.>"}}); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "IN", jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 3, AckWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.NewPipeline(prometheus.NewRegistry(), "test")
	d := New(js, proto.StageTransform, 3, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	d.Backoff = func(uint64) time.Duration { return 20 * time.Millisecond }
	return &env{js: js, cons: cons, d: d, m: m}
}

func (e *env) publish(t *testing.T, body string) {
	t.Helper()
	h := nats.Header{}
	h.Set(proto.HeaderMsgID, "id-"+body)
	h.Set(proto.HeaderCorrelationID, "run-1")
	if _, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: "raw.punch.hq.dev1", Data: []byte(body), Header: h}); err != nil {
		t.Fatal(err)
	}
}

// next fetches one message, or nil if none arrives within wait.
func (e *env) next(t *testing.T, wait time.Duration) jetstream.Msg {
	t.Helper()
	b, err := e.cons.Fetch(1, jetstream.FetchMaxWait(wait))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		return m
	}
	return nil
}

func (e *env) deadLetters(t *testing.T) []jetstream.Msg {
	t.Helper()
	c, err := e.js.OrderedConsumer(context.Background(), "DLQ", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Fetch(10, jetstream.FetchMaxWait(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for m := range b.Messages() {
		out = append(out, m)
	}
	return out
}

func TestSettleSuccessAcks(t *testing.T) {
	e := setup(t, false)
	e.publish(t, "ok")
	m := e.next(t, time.Second)
	if err := e.d.Settle(context.Background(), m, nil); err != nil {
		t.Fatal(err)
	}
	if again := e.next(t, 200*time.Millisecond); again != nil {
		t.Fatal("acked message was redelivered")
	}
	if got := testutil.ToFloat64(e.m.Acked); got != 1 {
		t.Fatalf("acked metric = %v", got)
	}
}

func TestSettlePermanentDeadLettersThenTerminates(t *testing.T) {
	e := setup(t, false)
	e.publish(t, "bad")
	m := e.next(t, time.Second)
	err := fault.NewPermanent(proto.ReasonInvalid, errors.New("field user_id is required"))
	if err := e.d.Settle(context.Background(), m, err); err != nil {
		t.Fatal(err)
	}
	if again := e.next(t, 200*time.Millisecond); again != nil {
		t.Fatal("terminated message was redelivered")
	}
	dls := e.deadLetters(t)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	dl, derr := proto.DeadLetterFromHeader(dls[0].Headers())
	if derr != nil {
		t.Fatal(derr)
	}
	if dls[0].Subject() != "dlq.transform.raw.punch.hq.dev1" || string(dls[0].Data()) != "bad" {
		t.Errorf("dead letter on %s with body %q", dls[0].Subject(), dls[0].Data())
	}
	if dl.ReasonCode != proto.ReasonInvalid || dl.Reason != "field user_id is required" || dl.OriginalStream != "IN" ||
		dl.OriginalSeq != 1 || dl.Deliveries != 1 || dl.MsgID != "id-bad" || dl.CorrelationID != "run-1" {
		t.Errorf("dead letter = %+v", dl)
	}
	if got := testutil.ToFloat64(e.m.DeadLettered.WithLabelValues(proto.ReasonInvalid)); got != 1 {
		t.Errorf("dead-lettered metric = %v", got)
	}
	if dl.Sink != "" {
		t.Errorf("dead letter names sink %q; the disposer has none", dl.Sink)
	}

	// A loader's disposer names its sink on the dead letter.
	e.d.Sink = "mysql"
	e.publish(t, "refused")
	if err := e.d.Settle(context.Background(), e.next(t, time.Second), fault.NewPermanent(proto.ReasonRejectedBySink, errors.New("too long"))); err != nil {
		t.Fatal(err)
	}
	dls = e.deadLetters(t)
	if len(dls) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dls))
	}
	if dl, err := proto.DeadLetterFromHeader(dls[1].Headers()); err != nil || dl.Sink != "mysql" || dl.MsgID != "id-refused" {
		t.Errorf("dead letter = %+v (%v), want sink mysql and the original id", dl, err)
	}
}

func TestSettleTransientRedeliversThenSpendsBudget(t *testing.T) {
	e := setup(t, false)
	e.publish(t, "flaky")
	transient := fault.NewTransient(errors.New("database unavailable"))
	for delivery := uint64(1); delivery <= 3; delivery++ {
		m := e.next(t, 2*time.Second)
		if m == nil {
			t.Fatalf("delivery %d did not arrive", delivery)
		}
		meta, _ := m.Metadata()
		if meta.NumDelivered != delivery {
			t.Fatalf("NumDelivered = %d, want %d", meta.NumDelivered, delivery)
		}
		if err := e.d.Settle(context.Background(), m, transient); err != nil {
			t.Fatal(err)
		}
		dls := e.deadLetters(t)
		if delivery < 3 && len(dls) != 0 {
			t.Fatalf("dead-lettered after delivery %d of 3", delivery)
		}
		if delivery == 3 {
			if len(dls) != 1 {
				t.Fatalf("%d dead letters after the last delivery, want 1", len(dls))
			}
			dl, _ := proto.DeadLetterFromHeader(dls[0].Headers())
			if dl.ReasonCode != proto.ReasonRetriesSpent || dl.Deliveries != 3 {
				t.Fatalf("dead letter = %+v, want retries_spent after 3 deliveries", dl)
			}
		}
	}
	if got := testutil.ToFloat64(e.m.Naked); got != 2 {
		t.Errorf("nak metric = %v, want 2", got)
	}
}

func TestSettleWithoutDLQStreamKeepsTheMessage(t *testing.T) {
	e := setup(t, true)
	e.publish(t, "bad")
	m := e.next(t, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := e.d.Settle(ctx, m, fault.NewPermanent(proto.ReasonInvalid, errors.New("bad"))); err != nil {
		t.Fatal(err)
	}
	// The dead letter could not be stored, so the message must come back.
	again := e.next(t, 2*time.Second)
	if again == nil || string(again.Data()) != "bad" {
		t.Fatal("message lost when the dead letter could not be published")
	}
}

func TestExponential(t *testing.T) {
	b := Exponential(time.Second, 10*time.Second)
	for n, want := range map[uint64]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 50: 10 * time.Second} {
		if got := b(n); got != want {
			t.Errorf("Exponential(%d) = %v, want %v", n, got, want)
		}
	}
}
