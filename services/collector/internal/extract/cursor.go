package extract

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"

	"github.com/punchflow/punchflow/proto"
)

// Store is the slice of jetstream.KeyValue (the collector's checkpoint
// bucket) that cursors and backfill windows are kept in. Create and Update
// are its compare-and-swap operations.
type Store interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
}

// Cursor is how far the live extraction of a source got: every window
// before Until was read completely and acknowledged.
type Cursor struct {
	Until     time.Time `json:"until"`
	RunID     string    `json:"run_id,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CursorKey is the KV key of a source's live cursor: cursor.<source>.
func CursorKey(source string) string { return "cursor." + proto.Token(source) }

// LoadCursor reads a source's cursor; ok is false when there is none yet.
func LoadCursor(ctx context.Context, kv Store, source string) (c Cursor, ok bool, err error) {
	c, _, ok, err = loadCursor(ctx, kv, CursorKey(source))
	return c, ok, err
}

func loadCursor(ctx context.Context, kv Store, key string) (Cursor, uint64, bool, error) {
	var c Cursor
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return c, 0, false, nil
	}
	if err != nil {
		return c, 0, false, fmt.Errorf("read cursor %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return c, 0, false, fmt.Errorf("cursor %s is not valid JSON (%q): %w", key, e.Value(), err)
	}
	return c, e.Revision(), true, nil
}

// AdvanceCursor moves a source's cursor forward to until, with
// compare-and-swap, so that concurrent writers (a backfill and the live
// loop, two replicas) never move it back. It reports whether it moved.
func AdvanceCursor(ctx context.Context, kv Store, source string, until time.Time, runID string) (bool, error) {
	key := CursorKey(source)
	for attempt := 0; attempt < 16; attempt++ {
		cur, rev, ok, err := loadCursor(ctx, kv, key)
		if err != nil {
			return false, err
		}
		if ok && !until.After(cur.Until) {
			return false, nil
		}
		b, err := json.Marshal(Cursor{Until: until.UTC(), RunID: runID, UpdatedAt: time.Now().UTC()})
		if err != nil {
			return false, err
		}
		if ok {
			_, err = kv.Update(ctx, key, b, rev)
		} else {
			_, err = kv.Create(ctx, key, b)
		}
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return false, fmt.Errorf("write cursor %s: %w", key, err)
		}
		// Someone else wrote it in between: read again and compare.
	}
	return false, fmt.Errorf("write cursor %s: too many concurrent updates", key)
}
