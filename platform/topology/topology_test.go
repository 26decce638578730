package topology

import (
	"context"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/natstest"
)

func defaults(t *testing.T, args ...string) Config {
	t.Helper()
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnsureIsIdempotentAndApplies(t *testing.T) {
	ns := natstest.Run(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	c := defaults(t)
	for i := 0; i < 2; i++ {
		if err := Ensure(ctx, js, c); err != nil {
			t.Fatalf("Ensure #%d: %v", i+1, err)
		}
	}
	raw, err := js.Stream(ctx, "RAW")
	if err != nil {
		t.Fatal(err)
	}
	cfg := raw.CachedInfo().Config
	if cfg.Retention != jetstream.LimitsPolicy || !cfg.DenyDelete || !cfg.DenyPurge || cfg.MaxAge != 30*24*time.Hour || cfg.Duplicates != 2*time.Hour {
		t.Fatalf("RAW config = %+v", cfg)
	}
	if cfg.Subjects[0] != "raw.>" {
		t.Fatalf("RAW subjects = %v", cfg.Subjects)
	}
	health, _ := js.Stream(ctx, "HEALTH")
	if health.CachedInfo().Config.MaxMsgsPerSubject != 16 {
		t.Fatalf("HEALTH per-subject limit = %d", health.CachedInfo().Config.MaxMsgsPerSubject)
	}
	for _, b := range []string{"collector_checkpoints", "healthwatch_state"} {
		if _, err := js.KeyValue(ctx, b); err != nil {
			t.Fatalf("bucket %s: %v", b, err)
		}
	}
	// A changed limit is applied to the existing stream.
	c.CleanMaxAge = 48 * time.Hour
	if err := Ensure(ctx, js, c); err != nil {
		t.Fatal(err)
	}
	clean, _ := js.Stream(ctx, "CLEAN")
	if got := clean.CachedInfo().Config.MaxAge; got != 48*time.Hour {
		t.Fatalf("CLEAN max age = %v after update", got)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"defaults are valid", nil, ""},
		{"replicas", []string{"--js-replicas", "7"}, "js-replicas is 7"},
		{"duplicate window longer than raw retention", []string{"--js-duplicate-window", "1000h"}, "js-duplicate-window"},
		{"empty name", []string{"--stream-raw", ""}, "stream-raw must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaults(t, tt.args...)
			err := c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestConsumer(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	c := Consumer(ConsumerOptions{Durable: "replay", FilterSubjects: []string{"raw.punch.>"}, AckWait: time.Minute, MaxDeliver: 5, MaxAckPending: 10, DeliverFrom: from})
	if c.AckPolicy != jetstream.AckExplicitPolicy || c.DeliverPolicy != jetstream.DeliverByStartTimePolicy || !c.OptStartTime.Equal(from) || c.MaxDeliver != 5 {
		t.Fatalf("consumer = %+v", c)
	}
	if c := Consumer(ConsumerOptions{Durable: "x"}); c.DeliverPolicy != jetstream.DeliverAllPolicy || c.OptStartTime != nil {
		t.Fatalf("consumer without DeliverFrom = %+v", c)
	}
}

// TestFleetStream: the fleet stream is a work queue that keeps one message
// per subject and refuses a second one, whatever the duplicate window, so
// that seeding a device twice leaves one work item.
func TestFleetStream(t *testing.T) {
	ns := natstest.Run(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if err := Ensure(ctx, js, defaults(t, "--stream-fleet", "DEVICES")); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "DEVICES")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.CachedInfo().Config; cfg.Retention != jetstream.WorkQueuePolicy || cfg.Subjects[0] != FleetSubjectPrefix+".>" {
		t.Fatalf("fleet stream config = %+v", cfg)
	}
	if _, err := js.Publish(ctx, "fleet.poll.A", []byte("a")); err != nil {
		t.Fatal(err)
	}
	_, err = js.Publish(ctx, "fleet.poll.A", []byte("a again"), jetstream.WithMsgID("another id"))
	if err == nil || !strings.Contains(err.Error(), "maximum messages per subject") {
		t.Fatalf("second message on one subject: %v, want refused", err)
	}
	if _, err := js.Publish(ctx, "fleet.live.B", []byte("b")); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("fleet stream holds %d messages, want 2", info.State.Msgs)
	}
}
