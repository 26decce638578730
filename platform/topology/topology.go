// Package topology declares punchflow's JetStream streams, consumers and KV
// buckets in one place and creates them idempotently. The same definitions
// are rendered as NACK resources in deploy/k8s for production.
package topology

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/proto"
)

// Config names the streams and buckets and sets their limits.
type Config struct {
	RawStream    string
	CleanStream  string
	HealthStream string
	DLQStream    string
	// FleetStream is the collector's work-queue stream: one message per
	// device, held by the replica that polls it (subjects FleetSubjects).
	FleetStream string

	Replicas int
	// Memory stores streams in memory (tests, demos); production uses files.
	Memory bool

	RawMaxAge    time.Duration
	CleanMaxAge  time.Duration
	HealthMaxAge time.Duration
	DLQMaxAge    time.Duration
	// HealthPerSubject is how many heartbeats are kept per device or source.
	HealthPerSubject int64
	// DuplicateWindow must cover the collector's publish-retry horizon.
	DuplicateWindow time.Duration

	CheckpointBucket string
	HealthBucket     string
	// RosterBucket holds the transformer's roster, one key per device user
	// at a site (see the transformer's roster package for keys and values).
	RosterBucket string
}

// RegisterFlags adds the stream-*, kv-* and js-* flags to fs with defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.RawStream, "stream-raw", "RAW", "name of the raw stream (raw.>)")
	fs.StringVar(&c.CleanStream, "stream-clean", "CLEAN", "name of the clean stream (clean.>)")
	fs.StringVar(&c.HealthStream, "stream-health", "HEALTH", "name of the health stream (health.>)")
	fs.StringVar(&c.DLQStream, "stream-dlq", "DLQ", "name of the dead-letter stream (dlq.>)")
	fs.StringVar(&c.FleetStream, "stream-fleet", "FLEET", "name of the collector's device work-queue stream (fleet.>)")
	fs.IntVar(&c.Replicas, "js-replicas", 1, "replicas of every stream and bucket (3 in a cluster)")
	fs.BoolVar(&c.Memory, "js-memory", false, "keep streams in memory (tests and demos only)")
	fs.DurationVar(&c.RawMaxAge, "stream-raw-max-age", 30*24*time.Hour, "how long raw records are kept")
	fs.DurationVar(&c.CleanMaxAge, "stream-clean-max-age", 7*24*time.Hour, "how long clean records are kept")
	fs.DurationVar(&c.HealthMaxAge, "stream-health-max-age", 7*24*time.Hour, "how long heartbeats are kept")
	fs.DurationVar(&c.DLQMaxAge, "stream-dlq-max-age", 30*24*time.Hour, "how long dead letters are kept")
	fs.Int64Var(&c.HealthPerSubject, "stream-health-per-subject", 16, "heartbeats kept per device or source")
	fs.DurationVar(&c.DuplicateWindow, "js-duplicate-window", 2*time.Hour, "JetStream de-duplication window; must exceed the collector's publish-retry horizon")
	fs.StringVar(&c.CheckpointBucket, "kv-checkpoints", "collector_checkpoints", "KV bucket of collector checkpoints")
	fs.StringVar(&c.HealthBucket, "kv-health", "healthwatch_state", "KV bucket of healthwatch state")
	fs.StringVar(&c.RosterBucket, "kv-roster", "transformer_roster", "KV bucket of the transformer's roster (device user at a site → person)")
}

// Validate checks the limits.
func (c *Config) Validate() error {
	var errs []error
	for flagName, v := range map[string]string{"stream-raw": c.RawStream, "stream-clean": c.CleanStream, "stream-health": c.HealthStream, "stream-dlq": c.DLQStream, "stream-fleet": c.FleetStream, "kv-checkpoints": c.CheckpointBucket, "kv-health": c.HealthBucket, "kv-roster": c.RosterBucket} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s must not be empty", flagName))
		}
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("js-replicas is %d: use 1, 3 or 5", c.Replicas))
	}
	if c.DuplicateWindow <= 0 || c.DuplicateWindow > c.RawMaxAge {
		errs = append(errs, fmt.Errorf("js-duplicate-window %v must be positive and no longer than stream-raw-max-age %v", c.DuplicateWindow, c.RawMaxAge))
	}
	return errors.Join(errs...)
}

func (c *Config) storage() jetstream.StorageType {
	if c.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// FleetSubjectPrefix is the first token of the fleet stream's subjects; the
// collector names them fleet.<mode>.<device>.
const FleetSubjectPrefix = "fleet"

// Streams returns the stream definitions: the four pipeline streams and the
// collector's fleet stream. Raw and DLQ use limits retention so that any
// number of consumers can be added later without affecting the pipeline.
//
// The fleet stream is a work queue holding exactly one message per device
// (MaxMsgsPerSubject 1 with DiscardNewPerSubject, so re-seeding a device that
// is already there is refused, whatever the duplicate window): a collector
// replica that pulls it holds the device until it acknowledges or delays it,
// and JetStream redelivers it to another replica when the holder dies.
func (c *Config) Streams() []jetstream.StreamConfig {
	base := func(name, prefix, desc string, maxAge time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{prefix + ".>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     c.storage(),
			Replicas:    c.Replicas,
			MaxAge:      maxAge,
			Duplicates:  min(c.DuplicateWindow, maxAge),
			Discard:     jetstream.DiscardOld,
		}
	}
	raw := base(c.RawStream, proto.PrefixRaw, "punchflow: everything collected, replayable", c.RawMaxAge)
	raw.DenyDelete = true
	raw.DenyPurge = true
	clean := base(c.CleanStream, proto.PrefixClean, "punchflow: records under the payroll rules", c.CleanMaxAge)
	health := base(c.HealthStream, proto.PrefixHealth, "punchflow: device and source heartbeats", c.HealthMaxAge)
	health.MaxMsgsPerSubject = c.HealthPerSubject
	dlq := base(c.DLQStream, proto.PrefixDLQ, "punchflow: records that could not be processed, with reasons", c.DLQMaxAge)
	dlq.DenyDelete = true
	fleet := jetstream.StreamConfig{
		Name:                 c.FleetStream,
		Description:          "punchflow: one work item per collector device; held by the replica polling it",
		Subjects:             []string{FleetSubjectPrefix + ".>"},
		Retention:            jetstream.WorkQueuePolicy,
		Storage:              c.storage(),
		Replicas:             c.Replicas,
		MaxMsgsPerSubject:    1,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		Duplicates:           time.Minute,
	}
	return []jetstream.StreamConfig{raw, clean, health, dlq, fleet}
}

// Buckets returns the KV bucket definitions.
func (c *Config) Buckets() []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: c.CheckpointBucket, Description: "punchflow collector checkpoints", History: 1, Replicas: c.Replicas, Storage: c.storage()},
		{Bucket: c.HealthBucket, Description: "punchflow healthwatch state per source", History: 4, Replicas: c.Replicas, Storage: c.storage()},
		{Bucket: c.RosterBucket, Description: "punchflow roster: device user at a site → person, department, shift", History: 4, Replicas: c.Replicas, Storage: c.storage()},
	}
}

// Ensure creates or updates every stream and bucket. It is idempotent and
// safe to run from several replicas at once.
func Ensure(ctx context.Context, js jetstream.JetStream, c Config) error {
	for _, s := range c.Streams() {
		if _, err := js.CreateOrUpdateStream(ctx, s); err != nil {
			return fmt.Errorf("create stream %s (%v): %w", s.Name, s.Subjects, err)
		}
	}
	for _, b := range c.Buckets() {
		if _, err := js.CreateOrUpdateKeyValue(ctx, b); err != nil {
			return fmt.Errorf("create kv bucket %s: %w", b.Bucket, err)
		}
	}
	return nil
}

// ConsumerOptions are the knobs of a durable pull consumer.
type ConsumerOptions struct {
	Durable        string
	FilterSubjects []string
	// AckWait is how long a delivered message may stay unacknowledged.
	AckWait time.Duration
	// MaxDeliver is the delivery budget; the disposition function dead-letters
	// a message on its last delivery.
	MaxDeliver    int
	MaxAckPending int
	// DeliverFrom, when set, starts a new consumer at this time instead of
	// at the beginning of the stream.
	DeliverFrom time.Time
}

// Consumer renders a durable, explicit-ack pull consumer definition.
func Consumer(o ConsumerOptions) jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:        o.Durable,
		Description:    "punchflow " + o.Durable,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        o.AckWait,
		MaxDeliver:     o.MaxDeliver,
		MaxAckPending:  o.MaxAckPending,
		FilterSubjects: o.FilterSubjects,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if !o.DeliverFrom.IsZero() {
		t := o.DeliverFrom
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &t
	}
	return cfg
}
