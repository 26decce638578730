package publish_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/services/collector/internal/jstest"
	"github.com/punchflow/punchflow/services/collector/internal/publish"
)

func msg(i int) *nats.Msg {
	return &nats.Msg{Subject: "raw.record.t", Data: []byte(fmt.Sprint(i)), Header: nats.Header{"Nats-Msg-Id": {fmt.Sprint("id-", i)}}}
}

func TestBatchWaitsForEveryAcknowledgement(t *testing.T) {
	env := jstest.Start(t, true)
	ctx := context.Background()
	b := publish.NewBatch(env.JS, publish.Options{Window: 7})
	for i := range 100 {
		if err := b.Add(ctx, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Ids 0..49 again: acknowledged as duplicates, stored once.
	for i := range 50 {
		if err := b.Add(ctx, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if b.Acked() != 150 || env.Count(t, "RAW", "") != 100 {
		t.Fatalf("acked %d, RAW %d", b.Acked(), env.Count(t, "RAW", ""))
	}
}

func TestBatchRepublishesUntilTheStreamIsBack(t *testing.T) {
	env := jstest.Start(t, true)
	ctx := context.Background()
	if err := env.JS.DeleteStream(ctx, "RAW"); err != nil {
		t.Fatal(err)
	}
	b := publish.NewBatch(env.JS, publish.Options{Window: 16, AckTimeout: time.Second, Budget: 20 * time.Second})
	for i := range 40 {
		if err := b.Add(ctx, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = topology.Ensure(ctx, env.JS, env.Topo)
	}()
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if n := env.Count(t, "RAW", ""); n != 40 {
		t.Fatalf("RAW %d, want 40", n)
	}

	// Without the stream and with a short budget, Wait gives up.
	if err := env.JS.DeleteStream(ctx, "RAW"); err != nil {
		t.Fatal(err)
	}
	b = publish.NewBatch(env.JS, publish.Options{Budget: 200 * time.Millisecond})
	if err := b.Add(ctx, msg(1)); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(ctx); !errors.Is(err, publish.ErrNotAcknowledged) {
		t.Fatalf("Wait = %v, want ErrNotAcknowledged", err)
	}
}
