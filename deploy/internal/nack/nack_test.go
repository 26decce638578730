package nack

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	sigsyaml "sigs.k8s.io/yaml"
)

func specOf(t *testing.T, y string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := sigsyaml.Unmarshal([]byte(y), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStream(t *testing.T) {
	got, err := Stream(specOf(t, `{name: RAW, subjects: ["raw.>"], storage: file, replicas: 3, maxAge: 720h, duplicateWindow: 2h, denyDelete: true, denyPurge: true, maxMsgsPerSubject: 16, preventDelete: true}`))
	if err != nil {
		t.Fatal(err)
	}
	want := jetstream.StreamConfig{
		Name: "RAW", Subjects: []string{"raw.>"}, Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Replicas: 3,
		MaxAge: 720 * time.Hour, Duplicates: 2 * time.Hour, Discard: jetstream.DiscardOld, DenyDelete: true, DenyPurge: true,
		MaxConsumers: -1, MaxMsgs: -1, MaxBytes: -1, MaxMsgSize: -1, MaxMsgsPerSubject: 16,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stream (-want +got):\n%s", diff)
	}
	// The CRD's default storage is memory: a manifest that forgets it gets
	// a stream that does not survive a restart.
	mem, err := Stream(specOf(t, `{name: X, subjects: [x]}`))
	if err != nil || mem.Storage != jetstream.MemoryStorage {
		t.Errorf("default storage = %v (%v), want memory as the CRD says", mem.Storage, err)
	}
}

func TestConsumer(t *testing.T) {
	stream, got, err := Consumer(specOf(t, `{streamName: RAW, durableName: transformer, ackPolicy: explicit, ackWait: 30s, maxDeliver: 8, maxAckPending: 4096, filterSubjects: ["raw.punch.>"], backoff: [1s, 5s]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := jetstream.ConsumerConfig{
		Durable: "transformer", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: 8, MaxAckPending: 4096,
		FilterSubjects: []string{"raw.punch.>"}, DeliverPolicy: jetstream.DeliverAllPolicy, ReplayPolicy: jetstream.ReplayInstantPolicy,
		BackOff: []time.Duration{time.Second, 5 * time.Second},
	}
	if stream != "RAW" {
		t.Errorf("stream = %q", stream)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Consumer (-want +got):\n%s", diff)
	}
}

func TestKeyValue(t *testing.T) {
	got, err := KeyValue(specOf(t, `{bucket: healthwatch_state, description: d, history: 4, storage: file, replicas: 3, preventDelete: true}`))
	if err != nil {
		t.Fatal(err)
	}
	want := jetstream.KeyValueConfig{Bucket: "healthwatch_state", Description: "d", History: 4, Storage: jetstream.FileStorage, Replicas: 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("KeyValue (-want +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		conv func(map[string]any) error
		spec string
		want string
	}{
		{"unknown stream field", func(m map[string]any) error { _, err := Stream(m); return err }, `{name: X, sources: [{name: Y}]}`, "not supported by this conversion: sources"},
		{"bad duration", func(m map[string]any) error { _, err := Stream(m); return err }, `{name: X, maxAge: 30d}`, "spec.maxAge"},
		{"bad retention", func(m map[string]any) error { _, err := Stream(m); return err }, `{name: X, retention: forever}`, `retention "forever"`},
		{"push consumer", func(m map[string]any) error { _, _, err := Consumer(m); return err }, `{durableName: d, deliverSubject: x}`, "push consumers"},
		{"unknown kv field", func(m map[string]any) error { _, err := KeyValue(m); return err }, `{bucket: b, republish: {source: x}}`, "not supported by this conversion: republish"},
		{"fraction", func(m map[string]any) error { _, err := KeyValue(m); return err }, `{bucket: b, history: 1.5}`, "not a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.conv(specOf(t, tt.spec))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestStreamMirror(t *testing.T) {
	got, err := Stream(specOf(t, `{name: RAW, storage: file, mirror: {name: RAW, externalApiPrefix: JS.PUNCHFLOW.API, externalDeliverPrefix: punchflow.readers}, account: readers}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &jetstream.StreamSource{Name: "RAW", External: &jetstream.ExternalStream{APIPrefix: "JS.PUNCHFLOW.API", DeliverPrefix: "punchflow.readers"}}
	if diff := cmp.Diff(want, got.Mirror); diff != "" {
		t.Errorf("mirror (-want +got):\n%s", diff)
	}
	if _, err := Stream(specOf(t, `{name: X, mirror: {name: Y, optStartSeq: 5}}`)); err == nil || !strings.Contains(err.Error(), "optStartSeq") {
		t.Errorf("mirror with an unsupported field: %v", err)
	}
}
