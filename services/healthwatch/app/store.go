package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
	"github.com/punchflow/punchflow/services/healthwatch/internal/state"
)

// record is the value kept per device or source in the state bucket, under
// state.Key: the source view of /api/sources, the device health with its
// history, and the outbox of notifications written in the same
// compare-and-swap as the transitions that caused them (so a crash between
// the state write and the publish loses nothing: whoever next touches the
// record, or the evaluator, publishes them, and JetStream drops repeats by
// id).
type record struct {
	state.Source
	Device *health.Device `json:"device,omitempty"`
	Outbox []notify.Item  `json:"outbox,omitempty"`
	// Unannounced are conditions whose raise was found too late to alert at
	// once; see folder.queue.
	Unannounced []health.State `json:"unannounced,omitempty"`
}

func (r record) clone() record {
	if r.Device != nil {
		d := *r.Device
		r.Device = &d
	}
	r.Outbox = slices.Clone(r.Outbox)
	r.Unannounced = slices.Clone(r.Unannounced)
	return r
}

type cached struct {
	rec record
	rev uint64
}

// store is the state bucket with a local cache kept current by a KV
// watcher, so the status page, the evaluator and the reports read memory;
// writes go to the bucket with compare-and-swap on a fresh read. It is safe
// for concurrent use.
type store struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu     sync.RWMutex
	recs   map[string]cached
	loaded chan struct{}
	once   sync.Once
}

func newStore(kv jetstream.KeyValue, log *slog.Logger) *store {
	return &store{kv: kv, log: log, recs: map[string]cached{}, loaded: make(chan struct{})}
}

// watch keeps the cache current until ctx ends, re-opening the watcher if
// it stops.
func (s *store) watch(ctx context.Context) error {
	for ctx.Err() == nil {
		w, err := s.kv.WatchAll(ctx)
		if err != nil {
			s.log.Warn("watch state bucket, will retry", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for e := range w.Updates() {
			if e == nil {
				s.once.Do(func() { close(s.loaded) })
				continue
			}
			s.apply(e)
		}
		_ = w.Stop()
	}
	return nil
}

// ready reports whether the initial load finished.
func (s *store) ready() bool {
	select {
	case <-s.loaded:
		return true
	default:
		return false
	}
}

func (s *store) apply(e jetstream.KeyValueEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.recs[e.Key()]; ok && cur.rev >= e.Revision() {
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		delete(s.recs, e.Key())
		return
	}
	var r record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		s.log.Warn("state entry is not readable; ignored", "key", e.Key(), "err", err)
		return
	}
	s.recs[e.Key()] = cached{rec: r, rev: e.Revision()}
}

func (s *store) remember(key string, r record, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.recs[key]; ok && cur.rev >= rev {
		return
	}
	s.recs[key] = cached{rec: r.clone(), rev: rev}
}

// get returns the cached record of key.
func (s *store) get(key string) (record, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.recs[key]
	return c.rec.clone(), ok
}

// snapshot returns every cached record with its key, sorted by key.
func (s *store) snapshot() ([]string, []record) {
	s.mu.RLock()
	keys := make([]string, 0, len(s.recs))
	for k := range s.recs {
		keys = append(keys, k)
	}
	s.mu.RUnlock()
	sort.Strings(keys)
	recs := make([]record, 0, len(keys))
	out := keys[:0]
	for _, k := range keys {
		if r, ok := s.get(k); ok {
			out = append(out, k)
			recs = append(recs, r)
		}
	}
	return out, recs
}

// devices returns every device's health.
func (s *store) devices() []health.Device {
	_, recs := s.snapshot()
	var out []health.Device
	for _, r := range recs {
		if r.Device != nil {
			out = append(out, *r.Device)
		}
	}
	return out
}

// errConflict is returned when update lost too many races in a row.
var errConflict = errors.New("too many concurrent updates")

// update applies fn to the current record of key (nil if there is none)
// and writes the result with compare-and-swap, re-reading and re-applying
// on a conflict: two replicas never overwrite each other, and the
// transitions fn computes are exactly those of the write that won. fn must
// be pure: it may run several times. It returns the record written (or the
// current one when fn changed nothing) and whether a write happened.
//
// The first attempt starts from the watched cache, without a read: a write
// from a stale copy fails its compare-and-swap and is redone from a read,
// and a decision to write nothing is only taken from a fresh read.
func (s *store) update(ctx context.Context, key string, fn func(prev *record) (record, bool)) (record, bool, error) {
	fromCache := true
	for range 8 {
		prev, rev, cached, err := s.current(ctx, key, fromCache)
		if err != nil {
			return record{}, false, err
		}
		fromCache = false
		var in *record
		if prev != nil {
			c := prev.clone()
			in = &c
		}
		next, changed := fn(in)
		if !changed {
			if cached {
				continue // confirm from a fresh read
			}
			if prev == nil {
				return record{}, false, nil
			}
			return *prev, false, nil
		}
		b, err := json.Marshal(next)
		if err != nil {
			return record{}, false, fmt.Errorf("encode state %s: %w", key, err)
		}
		var newRev uint64
		if prev == nil {
			newRev, err = s.kv.Create(ctx, key, b)
		} else {
			newRev, err = s.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			s.remember(key, next, newRev)
			return next, true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return record{}, false, fmt.Errorf("write state %s: %w", key, err)
		}
	}
	return record{}, false, fmt.Errorf("state %s: %w", key, errConflict)
}

// current returns the record of key and its revision (nil when there is
// none): from the cache when fromCache is set and it holds the key (cached
// is then true), else read from the bucket.
func (s *store) current(ctx context.Context, key string, fromCache bool) (prev *record, rev uint64, cached bool, err error) {
	if fromCache {
		s.mu.RLock()
		c, ok := s.recs[key]
		s.mu.RUnlock()
		if ok {
			r := c.rec.clone()
			return &r, c.rev, true, nil
		}
	}
	e, err := s.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, 0, false, nil
	case err != nil:
		return nil, 0, false, fmt.Errorf("read state %s: %w", key, err)
	}
	var r record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, 0, false, fmt.Errorf("state %s is not readable: %w", key, err)
	}
	s.remember(key, r, e.Revision())
	return &r, e.Revision(), false, nil
}
