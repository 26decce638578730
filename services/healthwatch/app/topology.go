package app

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-retry"

	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
)

// alertsPrefix is the first subject token of the alerts stream:
// alerts.<type>.<device or team>.
const alertsPrefix = "alerts"

// StreamConfig is the alerts stream: limits retention (one durable consumer
// per channel reads it independently, so a failing channel holds back only
// itself), kept for MaxAge, with a de-duplication window so that the same
// notification id published by two replicas, or twice by one, is stored
// once.
func (a AlertTopology) StreamConfig(t topology.Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        a.Stream,
		Description: "punchflow healthwatch: notifications waiting to be delivered, one consumer per channel",
		Subjects:    []string{alertsPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     storage(t),
		Replicas:    t.Replicas,
		MaxAge:      a.MaxAge,
		Duplicates:  a.Duplicates,
		Discard:     jetstream.DiscardOld,
	}
}

// BucketConfig is the bucket of delivery markers (sent.<channel>.<id>) and
// schedule claims (sched.*, amresend.*). Created with Create, a key is an
// exactly-once claim across replicas; entries expire after TTL.
func (a AlertTopology) BucketConfig(t topology.Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      a.Bucket,
		Description: "punchflow healthwatch delivery markers and schedule claims",
		History:     1,
		TTL:         a.TTL,
		Replicas:    t.Replicas,
		Storage:     storage(t),
	}
}

func storage(t topology.Config) jetstream.StorageType {
	if t.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// ensureAlerts creates or updates the alerts stream and bucket, retrying
// until NATS answers or ctx ends. It is idempotent.
func ensureAlerts(ctx context.Context, js jetstream.JetStream, a AlertTopology, t topology.Config) error {
	b := retry.WithCappedDuration(5*time.Second, retry.NewExponential(200*time.Millisecond))
	return retry.Do(ctx, b, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := js.CreateOrUpdateStream(cctx, a.StreamConfig(t)); err != nil {
			return retry.RetryableError(fmt.Errorf("create stream %s: %w", a.Stream, err))
		}
		if _, err := js.CreateOrUpdateKeyValue(cctx, a.BucketConfig(t)); err != nil {
			return retry.RetryableError(fmt.Errorf("create kv bucket %s: %w", a.Bucket, err))
		}
		return nil
	})
}

// alertSubject is the subject an item is published on.
func alertSubject(itemType, who string) string {
	return alertsPrefix + "." + proto.Token(itemType) + "." + proto.Token(who)
}
