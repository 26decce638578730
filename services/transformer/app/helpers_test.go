package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/natstest"
	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/proto"
)

// running is a transformer started through Run.
type running struct{ *servicetest.Running }

// start runs the transformer with args against ns and waits for /readyz.
// The test's cleanup stops it and checks that Run returned nil.
func start(t testing.TB, ns *server.Server, args ...string) *running {
	t.Helper()
	all := append([]string{"--nats-url", ns.ClientURL(), "--log-format", "json", "--js-memory", "--shutdown-timeout", "10s"}, args...)
	r := servicetest.Start(t, "transformer", Run, all, func(string) string { return "" })
	r.WaitReady(t, 30*time.Second)
	return &running{r}
}

// stop cancels the transformer and checks that it drained cleanly. It may
// be called more than once.
func (r *running) stop(t testing.TB) {
	t.Helper()
	if err := r.Stop(30 * time.Second); err != nil {
		t.Errorf("%v\n%s", err, r.Logs.String())
	}
}

// metric reads one series from /metrics ("name" or `name{label="v"}`): 0
// when the series is absent, -1 when /metrics does not answer.
func (r *running) metric(t testing.TB, series string) float64 {
	t.Helper()
	m, err := r.Metrics()
	if err != nil {
		return -1
	}
	return m[series]
}

func connect(t testing.TB, ns *server.Server) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // atomic, as a ConfigMap update is
		t.Fatal(err)
	}
	return path
}

// publishPunches publishes punches to RAW as the collector does (id as
// Nats-Msg-Id) and waits for every acknowledgement.
func publishPunches(t testing.TB, js jetstream.JetStream, punches []proto.RawPunch) {
	t.Helper()
	msgs := make([]*nats.Msg, len(punches))
	for i := range punches {
		b, err := proto.Encode(&punches[i])
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = &nats.Msg{Subject: proto.RawPunchSubject(punches[i].Site, punches[i].DeviceSerial), Data: b,
			Header: nats.Header{proto.HeaderMsgID: {punches[i].ID}, proto.HeaderCorrelationID: {punches[i].RunID}}}
	}
	publishRaw(t, js, msgs)
}

func publishRaw(t testing.TB, js jetstream.JetStream, msgs []*nats.Msg) {
	t.Helper()
	// A sliding window below the client's limit of outstanding async
	// publishes (4000): wait for the oldest acknowledgement when it is full.
	const window = 2000
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	wait := func(f jetstream.PubAckFuture) {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("publish %s: %v", f.Msg().Subject, err)
		case <-time.After(60 * time.Second):
			t.Fatalf("publish %s: no acknowledgement", f.Msg().Subject)
		}
	}
	for i, m := range msgs {
		if i >= window {
			wait(futures[i-window])
		}
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures[max(0, len(futures)-window):] {
		wait(f)
	}
}

// publishBulk publishes punches to RAW as plain NATS messages (no
// per-message acknowledgement: cheaper for large test loads) with their id
// as Nats-Msg-Id, and waits until RAW holds want messages in all.
func publishBulk(t testing.TB, ns *server.Server, js jetstream.JetStream, punches []proto.RawPunch, want uint64) {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for i := range punches {
		b, err := proto.Encode(&punches[i])
		if err != nil {
			t.Fatal(err)
		}
		m := &nats.Msg{Subject: proto.RawPunchSubject(punches[i].Site, punches[i].DeviceSerial), Data: b,
			Header: nats.Header{proto.HeaderMsgID: {punches[i].ID}}}
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	servicetest.WaitFor(t, fmt.Sprintf("RAW to hold %d messages", want), 60*time.Second, func() (bool, string) {
		s, err := js.Stream(context.Background(), "RAW")
		if err != nil {
			return false, err.Error()
		}
		info, err := s.Info(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return info.State.Msgs >= want, fmt.Sprint(info.State.Msgs)
	})
}

// readStream returns every message of a stream on a subject filter, waiting
// until there are at least want of them.
func readStream(t testing.TB, js jetstream.JetStream, stream, filter string, want int) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	servicetest.WaitFor(t, fmt.Sprintf("%d messages on %s", want, filter), 60*time.Second, func() (bool, string) {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false, err.Error()
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			return false, err.Error()
		}
		n := uint64(0)
		for _, c := range info.State.Subjects {
			n += c
		}
		return n >= uint64(want), fmt.Sprintf("%d", n)
	})
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			out = append(out, m)
			n++
		}
		if n == 0 {
			ci := cons.CachedInfo()
			if ci != nil && ci.NumPending == 0 {
				return out
			}
			time.Sleep(10 * time.Millisecond)
			if len(out) >= want {
				ci, err := cons.Info(ctx)
				if err == nil && ci.NumPending == 0 {
					return out
				}
			}
		}
	}
}

// waitIdle waits until a RAW consumer has nothing pending and nothing
// awaiting acknowledgement, on every look for 100 ms.
func waitIdle(t testing.TB, js jetstream.JetStream, durable string) {
	t.Helper()
	servicetest.WaitSteady(t, "consumer "+durable+" to settle everything", 60*time.Second, 100*time.Millisecond, func() (bool, string) {
		c, err := js.Consumer(context.Background(), "RAW", durable)
		if err != nil {
			return false, err.Error()
		}
		ci, err := c.Info(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return ci.NumPending == 0 && ci.NumAckPending == 0 && ci.NumRedelivered == 0, fmt.Sprintf("pending %d, ack pending %d, redelivered %d", ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
	})
}

func decodeEvents(t testing.TB, msgs []jetstream.Msg) []proto.AttendanceEvent {
	t.Helper()
	out := make([]proto.AttendanceEvent, len(msgs))
	for i, m := range msgs {
		ev, err := proto.DecodeAttendanceEvent(m.Data())
		if err != nil {
			t.Fatalf("clean message %d: %v", i, err)
		}
		if m.Headers().Get(proto.HeaderMsgID) != ev.ID {
			t.Fatalf("clean message %d: Nats-Msg-Id %q, id %q", i, m.Headers().Get(proto.HeaderMsgID), ev.ID)
		}
		out[i] = ev
	}
	return out
}

func readDLQ(t testing.TB, js jetstream.JetStream, want int) []proto.DeadLetter {
	t.Helper()
	var out []proto.DeadLetter
	for _, m := range readStream(t, js, "DLQ", "dlq.>", want) {
		dl, err := proto.DeadLetterFromHeader(m.Headers())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, dl)
	}
	return out
}

// natsServer starts an embedded JetStream server for one test.
func natsServer(t testing.TB) *server.Server { return natstest.Run(t) }
