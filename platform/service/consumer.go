package service

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-retry"
)

// BindConsumer creates or updates the durable consumer cfg on stream,
// retrying with backoff until NATS answers or ctx ends, and adds a readiness
// check named "consumer <durable>" that passes once it is bound and while
// its stream answers.
func (r *Runtime) BindConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var bound atomic.Bool
	var cons jetstream.Consumer
	r.Ops.AddCheck("consumer "+cfg.Durable, func(ctx context.Context) error {
		if !bound.Load() {
			return fmt.Errorf("not bound yet")
		}
		if _, err := cons.Info(ctx); err != nil {
			return err
		}
		return nil
	})
	b := retry.WithCappedDuration(5*time.Second, retry.NewExponential(200*time.Millisecond))
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, err := r.JS.CreateOrUpdateConsumer(cctx, stream, cfg)
		if err != nil {
			r.Log.Warn("binding consumer, will retry", "stream", stream, "durable", cfg.Durable, "err", err)
			return retry.RetryableError(err)
		}
		cons = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bind consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	bound.Store(true)
	r.Log.Info("consumer bound", "stream", stream, "durable", cfg.Durable, "filter", cfg.FilterSubjects)
	return cons, nil
}
