package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"

	"github.com/punchflow/punchflow/proto"
)

// Store is the slice of jetstream.KeyValue the fleet keeps device state in
// (the collector's checkpoint bucket).
type Store interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
}

// errConflict reports that a device's state changed under a session: another
// replica holds the device now. The session stops without further effects.
var errConflict = errors.New("device state changed by another replica (lease lost)")

// State is what the fleet keeps per device, under StateKey(serial): the
// checkpoint of its log and its breaker. It moves with the device from one
// replica to the next.
type State struct {
	Serial     string     `json:"serial"`
	Checkpoint Checkpoint `json:"checkpoint"`
	Breaker    Breaker    `json:"breaker"`
	// Config is the fingerprint of the settings Breaker applies to; another
	// fingerprint (a fixed address or comm key) closes the breaker.
	Config    string    `json:"config,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	// UpdatedBy is the replica and session that wrote it (for operators).
	UpdatedBy string `json:"updated_by,omitempty"`
}

// StateKey is the KV key of a device's state: fleet.<serial as a token>.
func StateKey(serial string) string { return "fleet." + proto.Token(serial) }

// stateHandle is a device's state and the KV revision it was read at. Every
// write is a compare-and-set on that revision, so two replicas that both
// believe they hold a device cannot both move its checkpoint: the second
// write fails with errConflict.
type stateHandle struct {
	key string
	rev uint64 // 0: not in the bucket yet
	st  State
}

// loadState reads dev's state (an empty one when there is none).
func loadState(ctx context.Context, kv Store, dev *Device) (*stateHandle, error) {
	h := &stateHandle{key: StateKey(dev.Serial), st: State{Serial: dev.Serial}}
	e, err := kv.Get(ctx, h.key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return h, nil
	case err != nil:
		return nil, fmt.Errorf("read state %s: %w", h.key, err)
	}
	if err := json.Unmarshal(e.Value(), &h.st); err != nil {
		return nil, fmt.Errorf("state %s is not valid JSON (delete the key to start over): %w", h.key, err)
	}
	h.rev = e.Revision()
	return h, nil
}

// save writes the state if nobody else wrote it since it was read.
func (h *stateHandle) save(ctx context.Context, kv Store, by string) error {
	h.st.UpdatedAt = time.Now().UTC()
	h.st.UpdatedBy = by
	b, err := json.Marshal(h.st)
	if err != nil {
		return fmt.Errorf("encode state %s: %w", h.key, err)
	}
	var rev uint64
	if h.rev == 0 {
		rev, err = kv.Create(ctx, h.key, b)
	} else {
		rev, err = kv.Update(ctx, h.key, b, h.rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("write state %s at revision %d: %w", h.key, h.rev, errConflict)
	}
	if err != nil {
		return fmt.Errorf("write state %s: %w", h.key, err)
	}
	h.rev = rev
	return nil
}
