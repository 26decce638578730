package nack

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/deploy/internal/manifest"
)

// Group is the API group of NACK's resources.
const Group = "jetstream.nats.io"

// StreamConsumer is a consumer and the stream it reads.
type StreamConsumer struct {
	Stream string
	Config jetstream.ConsumerConfig
}

// Topology is every NACK resource of a rendered manifest set, converted.
type Topology struct {
	Streams   []jetstream.StreamConfig
	Consumers []StreamConsumer
	Buckets   []jetstream.KeyValueConfig
}

// FromObjects converts the NACK Stream, Consumer and KeyValue objects among
// objs that belong to the NATS account named account (spec.account, the
// name of a NACK Account resource; "" for resources without one), in their
// order, and ignores every other object. Account resources are skipped; any
// other kind of the NACK group is an error: this package would not create it.
func FromObjects(objs []manifest.Object, account string) (Topology, error) {
	var t Topology
	for _, o := range objs {
		if o.GVK().Group != Group || o.Kind == "Account" {
			continue
		}
		spec, _ := o.Content["spec"].(map[string]any)
		if acc, _ := spec["account"].(string); acc != account {
			continue
		}
		switch o.Kind {
		case "Stream":
			c, err := Stream(spec)
			if err != nil {
				return t, fmt.Errorf("%s: %w", o.ID(), err)
			}
			t.Streams = append(t.Streams, c)
		case "Consumer":
			stream, c, err := Consumer(spec)
			if err != nil {
				return t, fmt.Errorf("%s: %w", o.ID(), err)
			}
			t.Consumers = append(t.Consumers, StreamConsumer{stream, c})
		case "KeyValue":
			c, err := KeyValue(spec)
			if err != nil {
				return t, fmt.Errorf("%s: %w", o.ID(), err)
			}
			t.Buckets = append(t.Buckets, c)
		default:
			return t, fmt.Errorf("%s: kind %s is not converted", o.ID(), o.Kind)
		}
	}
	return t, nil
}

// WithReplicas returns a copy of t with every stream and bucket at n
// replicas (a single embedded server holds only one). Consumers inherit
// their stream's.
func (t Topology) WithReplicas(n int) Topology {
	out := Topology{Consumers: append([]StreamConsumer(nil), t.Consumers...)}
	for _, s := range t.Streams {
		s.Replicas = n
		out.Streams = append(out.Streams, s)
	}
	for _, b := range t.Buckets {
		b.Replicas = n
		out.Buckets = append(out.Buckets, b)
	}
	return out
}

// Apply creates what t declares, as the NACK controller would: streams and
// buckets first, then consumers.
func (t Topology) Apply(ctx context.Context, js jetstream.JetStream) error {
	for _, s := range t.Streams {
		if _, err := js.CreateStream(ctx, s); err != nil {
			return fmt.Errorf("create stream %s: %w", s.Name, err)
		}
	}
	for _, b := range t.Buckets {
		if _, err := js.CreateKeyValue(ctx, b); err != nil {
			return fmt.Errorf("create kv bucket %s: %w", b.Bucket, err)
		}
	}
	for _, c := range t.Consumers {
		if _, err := js.CreateConsumer(ctx, c.Stream, c.Config); err != nil {
			return fmt.Errorf("create consumer %s on %s: %w", c.Config.Durable, c.Stream, err)
		}
	}
	return nil
}
