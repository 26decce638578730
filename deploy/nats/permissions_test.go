package natsdeploy

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/deploy/internal/manifest"
	"github.com/punchflow/punchflow/deploy/internal/nack"
)

// action is one thing a role tries; it returns the action's own error.
type action struct {
	name string
	run  func(ctx context.Context, c *client) error
}

func publish(subject string) action {
	return action{"publish " + subject, func(ctx context.Context, c *client) error {
		_, err := c.js.Publish(ctx, subject, []byte("test"))
		return err
	}}
}

func kvPut(bucket, key string) action {
	return action{"kv put " + bucket + "/" + key, func(ctx context.Context, c *client) error {
		kv, err := c.js.KeyValue(ctx, bucket)
		if err != nil {
			return err
		}
		_, err = kv.Put(ctx, key, []byte("v"))
		return err
	}}
}

func kvGet(bucket, key string) action {
	return action{"kv get " + bucket + "/" + key, func(ctx context.Context, c *client) error {
		kv, err := c.js.KeyValue(ctx, bucket)
		if err != nil {
			return err
		}
		_, err = kv.Get(ctx, key)
		return err
	}}
}

func kvKeys(bucket string) action {
	return action{"kv list " + bucket, func(ctx context.Context, c *client) error {
		kv, err := c.js.KeyValue(ctx, bucket)
		if err != nil {
			return err
		}
		l, err := kv.ListKeys(ctx)
		if err != nil {
			return err
		}
		n := 0
		for range l.Keys() {
			n++
		}
		if n == 0 {
			return errors.New("no keys listed")
		}
		return nil
	}}
}

// bind creates or updates a consumer, as a service does at start.
func bind(stream string, cfg jetstream.ConsumerConfig) action {
	return action{"bind " + stream + "/" + cfg.Durable, func(ctx context.Context, c *client) error {
		_, err := c.js.CreateOrUpdateConsumer(ctx, stream, cfg)
		return err
	}}
}

// fetchAck pulls one message from a durable consumer and acknowledges it,
// waiting for the server to confirm the acknowledgement.
func fetchAck(stream, durable string) action {
	return action{"fetch and ack " + stream + "/" + durable, func(ctx context.Context, c *client) error {
		cons, err := c.js.Consumer(ctx, stream, durable)
		if err != nil {
			return err
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if err := m.DoubleAck(ctx); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if n == 0 {
			return errors.New("no message delivered")
		}
		return nil
	}}
}

// readEphemeral reads one message through an ephemeral pull consumer, which
// the server removes by itself once idle: no delete needed.
func readEphemeral(stream string) action {
	return action{"read " + stream + " through an ephemeral consumer", func(ctx context.Context, c *client) error {
		cons, err := c.js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: time.Minute})
		if err != nil {
			return err
		}
		m, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			return err
		}
		if len(m.Data()) == 0 {
			return errors.New("empty message")
		}
		return nil
	}}
}

func getMsg(stream string, seq uint64) action {
	return action{fmt.Sprintf("get message %s/%d", stream, seq), func(ctx context.Context, c *client) error {
		s, err := c.js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		_, err = s.GetMsg(ctx, seq)
		return err
	}}
}

func createConsumer(stream, name string) action {
	return action{"create consumer " + stream + "/" + name, func(ctx context.Context, c *client) error {
		_, err := c.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy})
		return err
	}}
}

func deleteConsumer(stream, name string) action {
	return action{"delete consumer " + stream + "/" + name, func(ctx context.Context, c *client) error {
		return c.js.DeleteConsumer(ctx, stream, name)
	}}
}

func streamInfo(name string) action {
	return action{"stream info " + name, func(ctx context.Context, c *client) error {
		_, err := c.js.Stream(ctx, name)
		return err
	}}
}

func deleteStream(name string) action {
	return action{"delete stream " + name, func(ctx context.Context, c *client) error {
		return c.js.DeleteStream(ctx, name)
	}}
}

func purgeStream(name string) action {
	return action{"purge stream " + name, func(ctx context.Context, c *client) error {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			return err
		}
		return s.Purge(ctx)
	}}
}

func deleteMsg(stream string, seq uint64) action {
	return action{fmt.Sprintf("delete message %s/%d", stream, seq), func(ctx context.Context, c *client) error {
		s, err := c.js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		return s.DeleteMsg(ctx, seq)
	}}
}

func createStream(name, subject string) action {
	return action{"create stream " + name, func(ctx context.Context, c *client) error {
		_, err := c.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}})
		return err
	}}
}

func updateStream(name string) action {
	return action{"update stream " + name, func(ctx context.Context, c *client) error {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			return err
		}
		cfg := s.CachedInfo().Config
		cfg.MaxAge = time.Hour
		_, err = c.js.UpdateStream(ctx, cfg)
		return err
	}}
}

func subscribe(subject string) action {
	return action{"subscribe " + subject, func(ctx context.Context, c *client) error {
		sub, err := c.nc.SubscribeSync(subject)
		if err != nil {
			return err
		}
		defer sub.Unsubscribe()
		return c.nc.FlushWithContext(ctx)
	}}
}

func request(subject string) action {
	return action{"request " + subject, func(ctx context.Context, c *client) error {
		_, err := c.nc.RequestWithContext(ctx, subject, []byte("{}"))
		return err
	}}
}

// consumerConfigs are the prod overlay's NACK consumers, the configuration
// each service binds with.
func consumerConfigs(t *testing.T) map[string]jetstream.ConsumerConfig {
	t.Helper()
	objs, err := manifest.Render("../k8s/overlays/prod")
	if err != nil {
		t.Fatal(err)
	}
	top, err := nack.FromObjects(objs, "punchflow")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]jetstream.ConsumerConfig{}
	for _, c := range top.Consumers {
		out[c.Stream+"/"+c.Config.Durable] = c.Config
	}
	return out
}

// TestPermissions starts nats-server with punchflow-accounts.conf, creates
// the prod overlay's streams, buckets, consumers and readers' mirror as NACK
// would, and has every role try what it must be able to do (including the
// JetStream calls its service makes, and acknowledgements) and what it must
// not: every allowed action succeeds and every forbidden one is refused by
// the server with a permission violation.
func TestPermissions(t *testing.T) {
	s := startSecured(t)
	s.provision(t)
	cons := consumerConfigs(t)

	// Something to read in every stream.
	admin := s.connect(t, "admin", "")
	for _, subj := range []string{"raw.punch.hq.dev1", "raw.punch.hq.dev1", "clean.attendance.hq", "clean.attendance.hq", "health.source.csv", "health.source.csv"} {
		if _, err := admin.js.Publish(context.Background(), subj, []byte(`{"test":true}`)); err != nil {
			t.Fatalf("admin publish %s: %v", subj, err)
		}
	}
	readersAdmin := s.connect(t, "readers_admin", "")
	waitMirror(t, readersAdmin.js, 2)
	hwKV, err := admin.js.KeyValue(context.Background(), "healthwatch_state")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hwKV.Put(context.Background(), "source.csv", []byte("{}")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		role    string
		inbox   string
		allowed []action
		denied  []action
	}{
		{"collector", "_INBOX_collector",
			[]action{publish("raw.punch.hq.dev1"), publish("raw.record.orders"), publish("health.device.dev1"), publish("dlq.collect._"),
				kvPut("collector_checkpoints", "csv.file1"), kvGet("collector_checkpoints", "csv.file1")},
			[]action{publish("clean.attendance.hq"), publish("dlq.transform.raw.punch.hq.dev1"), kvPut("healthwatch_state", "source.x"),
				createConsumer("RAW", "sneaky"), fetchAck("RAW", "transformer"), streamInfo("CLEAN"), deleteStream("RAW"), purgeStream("RAW"),
				subscribe("raw.>"), subscribe("_INBOX_transformer.>")}},
		{"transformer", "_INBOX_transformer",
			[]action{bind("RAW", cons["RAW/transformer"]), fetchAck("RAW", "transformer"), publish("clean.attendance.hq"), publish("dlq.transform.raw.punch.hq.dev1")},
			[]action{publish("raw.punch.hq.dev1"), publish("health.source.x"), publish("dlq.load.x"), createConsumer("RAW", "other"),
				fetchAck("CLEAN", "loader-postgres"), deleteConsumer("RAW", "transformer"), kvPut("collector_checkpoints", "x"), deleteStream("CLEAN")}},
		{"loader", "_INBOX_loader",
			[]action{bind("CLEAN", cons["CLEAN/loader-postgres"]), fetchAck("CLEAN", "loader-postgres"), publish("dlq.load.clean.attendance.hq")},
			[]action{publish("clean.attendance.hq"), publish("raw.punch.hq.dev1"), publish("dlq.transform.x"), fetchAck("RAW", "transformer"),
				bind("RAW", cons["RAW/transformer"]), deleteStream("CLEAN"), purgeStream("CLEAN"), subscribe("clean.>")}},
		{"healthwatch", "_INBOX_healthwatch",
			[]action{bind("HEALTH", cons["HEALTH/healthwatch"]), fetchAck("HEALTH", "healthwatch"), kvPut("healthwatch_state", "source.csv"),
				kvGet("healthwatch_state", "source.csv"), kvKeys("healthwatch_state"), publish("dlq.health.health.source.csv")},
			[]action{publish("health.source.csv"), publish("raw.punch.hq.dev1"), kvPut("collector_checkpoints", "x"),
				fetchAck("RAW", "transformer"), deleteConsumer("HEALTH", "healthwatch")}},
		// The reader is in READERS: RAW there is the mirror.
		{"reader", "",
			[]action{streamInfo("RAW"), createConsumer("RAW", "platform-audit"), fetchAck("RAW", "platform-audit"), readEphemeral("RAW"), getMsg("RAW", 1)},
			[]action{publish("raw.punch.hq.dev1"), publish("clean.attendance.hq"), publish("punchflow.readers.x"),
				deleteConsumer("RAW", "platform-audit"), deleteStream("RAW"), purgeStream("RAW"), deleteMsg("RAW", 1),
				updateStream("RAW"), createStream("MINE", "mine.>"), streamInfo("CLEAN"),
				// The import the mirror uses is not the readers' to use.
				request("JS.PUNCHFLOW.API.CONSUMER.CREATE.RAW.evil")}},
	}
	for _, tt := range tests {
		c := s.connect(t, tt.role, tt.inbox)
		for _, a := range tt.allowed {
			t.Run(tt.role+"/may "+a.name, func(t *testing.T) {
				if err := c.do(func(ctx context.Context) error { return a.run(ctx, c) }); err != nil {
					t.Fatalf("%s could not %s: %v", tt.role, a.name, err)
				}
			})
		}
		for _, a := range tt.denied {
			t.Run(tt.role+"/may not "+a.name, func(t *testing.T) {
				err := c.do(func(ctx context.Context) error { return a.run(ctx, c) })
				if !errors.Is(err, errDenied) {
					t.Fatalf("%s could %s (err %v); the server must refuse it", tt.role, a.name, err)
				}
			})
		}
	}

	t.Run("a service without its own inbox prefix gets no replies", func(t *testing.T) {
		c := s.connect(t, "collector", "")
		if err := c.do(func(ctx context.Context) error { return publish("raw.punch.hq.dev1").run(ctx, c) }); !errors.Is(err, errDenied) {
			t.Fatalf("publish with the default inbox: %v, want a refused subscription", err)
		}
	})

	t.Run("a reader's push consumer cannot deliver into the pipeline", func(t *testing.T) {
		c := s.connect(t, "reader", "")
		clean, err := admin.js.Stream(context.Background(), "CLEAN")
		if err != nil {
			t.Fatal(err)
		}
		before := clean.CachedInfo().State.Msgs
		// Allowed: the consumer lives in READERS, and so does its deliver
		// subject, whatever it is called.
		err = c.do(func(ctx context.Context) error {
			_, err := c.js.CreateOrUpdateConsumer(ctx, "RAW", jetstream.ConsumerConfig{Name: "push-to-clean", DeliverSubject: "clean.attendance.hq", AckPolicy: jetstream.AckNonePolicy})
			return err
		})
		if err != nil {
			t.Fatalf("create push consumer: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
		info, err := clean.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != before {
			t.Fatalf("PUNCHFLOW CLEAN went from %d to %d messages: a reader injected into the pipeline", before, info.State.Msgs)
		}
	})

	t.Run("the mirror follows RAW", func(t *testing.T) {
		if _, err := admin.js.Publish(context.Background(), "raw.punch.hq.dev2", []byte(`{"late":true}`)); err != nil {
			t.Fatal(err)
		}
		raw, err := admin.js.Stream(context.Background(), "RAW")
		if err != nil {
			t.Fatal(err)
		}
		waitMirror(t, readersAdmin.js, raw.CachedInfo().State.Msgs)
	})
}

// waitMirror waits until READERS' RAW holds at least n messages.
func waitMirror(t *testing.T, js jetstream.JetStream, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got uint64
	for time.Now().Before(deadline) {
		s, err := js.Stream(context.Background(), "RAW")
		if err == nil {
			info, err := s.Info(context.Background())
			if err == nil {
				if got = info.State.Msgs; got >= n {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("READERS RAW mirror holds %d messages, want %d", got, n)
}
