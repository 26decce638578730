package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
)

// plainLoop is the baseline the transformer is measured against: a pull
// consumer on RAW defined like the transformer's (same filters, ack policy
// and limits) that republishes each message's bytes unchanged to CLEAN
// (asynchronously, with a fresh Nats-Msg-Id per round) and acknowledges it
// after the publish is acknowledged, with the same pull size and in-flight
// window as the transformer. It returns once n messages are acknowledged.
func plainLoop(b testing.TB, js jetstream.JetStream, durable string, n, inFlight int, round int) {
	ctx := context.Background()
	cons, err := js.CreateOrUpdateConsumer(ctx, "RAW", jetstream.ConsumerConfig{
		Durable: durable, AckPolicy: jetstream.AckExplicitPolicy, FilterSubjects: []string{"raw.punch.>", "raw.record.>"},
		AckWait: 30 * time.Second, MaxAckPending: 4096, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		b.Fatal(err)
	}
	type item struct {
		msg jetstream.Msg
		fut jetstream.PubAckFuture
	}
	pending := make(chan item, inFlight)
	done := make(chan struct{})
	go func() {
		acked := 0
		for it := range pending {
			select {
			case <-it.fut.Ok():
				if err := it.msg.Ack(); err != nil {
					b.Error(err)
				}
			case err := <-it.fut.Err():
				b.Error(err)
			}
			if acked++; acked == n {
				close(done)
			}
		}
	}()
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		out := &nats.Msg{Subject: "clean.plain." + msg.Subject()[len("raw.punch."):], Data: msg.Data(),
			Header: nats.Header{proto.HeaderMsgID: {fmt.Sprintf("%s-%d", msg.Headers().Get(proto.HeaderMsgID), round)}}}
		fut, err := js.PublishMsgAsync(out)
		if err != nil {
			b.Error(err)
			return
		}
		pending <- item{msg, fut}
	}, jetstream.PullMaxMessages(min(inFlight, 500)))
	if err != nil {
		b.Fatal(err)
	}
	<-done
	cc.Stop()
	close(pending)
}

// BenchmarkThroughput measures the transformer service (app.Run, one
// replica, timed from the creation of its consumer) from RAW to CLEAN
// against the plain consume-and-republish loop on the same embedded server
// in the same run. RAW holds 20,000 punches; each round reads all of them on
// a fresh durable consumer and publishes ids CLEAN has not seen (CLEAN is
// purged between rounds). Baseline and service rounds alternate, three
// pairs per iteration, so that a change in the machine's load affects both.
// Goal: ratio (service ÷ baseline) at least 0.7.
func BenchmarkThroughput(b *testing.B) {
	const n, pairs = 20_000, 3
	ns := natsServer(b)
	js := connect(b, ns)
	ctx := context.Background()
	dir := b.TempDir()
	punches, rosterCSV := manyPunches(n)
	rosterPath := writeFile(b, dir, "roster.csv", rosterCSV)

	var top topology.Config
	top.RawStream, top.CleanStream, top.HealthStream, top.DLQStream, top.FleetStream = "RAW", "CLEAN", "HEALTH", "DLQ", "FLEET"
	top.CheckpointBucket, top.HealthBucket, top.RosterBucket = "collector_checkpoints", "healthwatch_state", "transformer_roster"
	top.Memory, top.Replicas, top.DuplicateWindow = true, 1, 2*time.Hour
	top.RawMaxAge, top.CleanMaxAge, top.HealthMaxAge, top.DLQMaxAge, top.HealthPerSubject = 24*time.Hour, 24*time.Hour, 24*time.Hour, 24*time.Hour, 16
	if err := topology.Ensure(ctx, js, top); err != nil {
		b.Fatal(err)
	}
	publishPunches(b, js, punches)
	clean, err := js.Stream(ctx, "CLEAN")
	if err != nil {
		b.Fatal(err)
	}

	var base, svc time.Duration
	rounds := 0
	for b.Loop() {
		for range pairs {
			if err := clean.Purge(ctx); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			plainLoop(b, js, fmt.Sprintf("plain-%d", rounds), n, 1024, rounds)
			base += time.Since(t0)

			if err := clean.Purge(ctx); err != nil {
				b.Fatal(err)
			}
			svc += serviceRound(b, ns, js, dir, rosterPath, rounds, n)
			if ci, err := clean.Info(ctx); err != nil || ci.State.Msgs != n {
				b.Fatalf("CLEAN holds %+v (%v), want %d events", ci.State, err, n)
			}
			rounds++
		}
	}
	svcRate := float64(n*rounds) / svc.Seconds()
	baseRate := float64(n*rounds) / base.Seconds()
	b.ReportMetric(svcRate, "punches/s")
	b.ReportMetric(baseRate, "baseline_punches/s")
	b.ReportMetric(svcRate/baseRate, "ratio")
}

// serviceRound runs the transformer on a fresh durable until it has
// acknowledged n messages and returns the time from the creation of its
// consumer (when it starts consuming; start-up is not counted) to then.
func serviceRound(b *testing.B, ns *server.Server, js jetstream.JetStream, dir, rosterPath string, round, n int) time.Duration {
	ctx := context.Background()
	// New rules text each round: a new rules version, so new ids that
	// CLEAN's de-duplication (which outlives a purge) does not drop.
	rulesPath := writeFile(b, dir, "rules.yaml", fmt.Sprintf("%s# round %d\n", replicaRules, round))
	durable := fmt.Sprintf("transformer-%d", round)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	var logs servicetest.Buffer
	go func() {
		done <- Run(runCtx, []string{"--nats-url", ns.ClientURL(), "--http-addr", "127.0.0.1:0", "--js-memory", "--log-format", "json",
			"--rules", rulesPath, "--roster", rosterPath, "--durable", durable}, func(string) string { return "" }, &logs, &logs)
	}()
	// One consumer lookup, then one info request per poll: the poll runs on
	// the same CPUs and should cost the service as little as it can.
	var (
		took time.Duration
		c    jetstream.Consumer
	)
	for {
		if c == nil {
			c, _ = js.Consumer(ctx, "RAW", durable)
		}
		if c != nil {
			ci, err := c.Info(ctx)
			if err == nil && ci.AckFloor.Consumer >= uint64(n) {
				took = time.Since(ci.Created)
				break
			}
		}
		select {
		case err := <-done:
			b.Fatalf("transformer stopped: %v\n%s", err, logs.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatalf("transformer: %v\n%s", err, logs.String())
	}
	return took
}
