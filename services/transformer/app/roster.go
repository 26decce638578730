package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/punchflow/punchflow/services/transformer/internal/roster"
)

// rosters holds the current roster. Readers take a snapshot per message
// (an immutable *roster.Roster, nil when no roster is configured); the
// watcher swaps in a new one when the source changes, so changes apply
// without a restart and never half-way through a message.
type rosters struct {
	cur     atomic.Pointer[roster.Roster]
	entries prometheus.Gauge
	reloads *prometheus.CounterVec
	log     *slog.Logger
}

func newRosters(reg prometheus.Registerer, log *slog.Logger) *rosters {
	r := &rosters{
		entries: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "punchflow", Subsystem: "transformer", Name: "roster_entries",
			Help: "Entries in the roster in use."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "punchflow", Subsystem: "transformer", Name: "roster_reloads_total",
			Help: "Roster changes applied (outcome ok) or refused (outcome error)."}, []string{"outcome"}),
		log: log,
	}
	reg.MustRegister(r.entries, r.reloads)
	return r
}

// Load returns the roster in use, nil when none is configured.
func (r *rosters) Load() *roster.Roster { return r.cur.Load() }

func (r *rosters) set(ros *roster.Roster, source string) {
	old := r.cur.Swap(ros)
	r.entries.Set(float64(ros.Len()))
	r.reloads.WithLabelValues("ok").Inc()
	if old == nil || old.Version != ros.Version {
		r.log.Info("roster loaded", "source", source, "entries", ros.Len(), "roster_version", ros.Version)
	}
}

// fileRoster re-reads a roster file when its content changes.
type fileRoster struct {
	path string
	poll time.Duration
	sum  [sha256.Size]byte
	into *rosters
}

// load reads and parses the file; a parse error leaves the roster in use.
func (f *fileRoster) load() error {
	b, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("read roster: %w", err)
	}
	sum := sha256.Sum256(b)
	if sum == f.sum && f.into.Load() != nil {
		return nil
	}
	ros, err := roster.Parse(f.path, b)
	if err != nil {
		return err
	}
	f.sum = sum
	f.into.set(ros, f.path)
	return nil
}

// run polls the file until ctx ends. A file that cannot be read or parsed
// is logged and counted; the last good roster stays in use.
func (f *fileRoster) run(ctx context.Context) error {
	t := time.NewTicker(f.poll)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := f.load(); err != nil {
			f.into.reloads.WithLabelValues("error").Inc()
			if err.Error() != lastErr {
				f.into.log.Error("roster file not applied; the previous roster stays in use", "file", f.path, "err", err)
			}
			lastErr = err.Error()
			continue
		}
		lastErr = ""
	}
}

// kvRoster mirrors a KV bucket into the roster: one key per device user at
// a site (roster.KVKey), the value a JSON object (roster.ParseKVEntry).
type kvRoster struct {
	bucket  string
	watcher jetstream.KeyWatcher
	entries map[string]roster.Entry
	into    *rosters
}

// startKVRoster opens the bucket, reads every entry and installs the first
// roster before it returns, so no message is processed against an empty
// roster. Call run to keep following changes.
func startKVRoster(ctx context.Context, js jetstream.JetStream, bucket string, into *rosters) (*kvRoster, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("roster bucket %s: %w", bucket, err)
	}
	// The watcher lives as long as the worker that run returns, which stops
	// it: tied to ctx, it would close when the service is told to stop, and
	// the worker could see it closed before its own context is cancelled.
	w, err := kv.WatchAll(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("watch roster bucket %s: %w", bucket, err)
	}
	k := &kvRoster{bucket: bucket, watcher: w, entries: map[string]roster.Entry{}, into: into}
	for {
		select {
		case <-ctx.Done():
			_ = w.Stop()
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("watch roster bucket %s: watcher closed", bucket)
			}
			if e == nil { // every existing entry has been delivered
				if err := k.publish(); err != nil {
					_ = w.Stop()
					return nil, err
				}
				return k, nil
			}
			k.apply(e)
		}
	}
}

func (k *kvRoster) apply(e jetstream.KeyValueEntry) {
	switch e.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		delete(k.entries, e.Key())
	default:
		entry, err := roster.ParseKVEntry(e.Key(), e.Value())
		if err != nil {
			k.into.reloads.WithLabelValues("error").Inc()
			k.into.log.Error("roster entry ignored; fix it in the bucket", "bucket", k.bucket, "key", e.Key(), "revision", e.Revision(), "err", err)
			return
		}
		k.entries[e.Key()] = entry
	}
}

func (k *kvRoster) publish() error {
	keys := make([]string, 0, len(k.entries))
	for key := range k.entries {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	list := make([]roster.Entry, len(keys))
	for i, key := range keys {
		list[i] = k.entries[key]
	}
	ros, err := roster.New(list)
	if err != nil {
		return fmt.Errorf("roster bucket %s: %w", k.bucket, err)
	}
	k.into.set(ros, "kv:"+k.bucket)
	return nil
}

// run follows the bucket until ctx ends. Bursts of changes are applied
// together: a new roster is built once the watcher has nothing more queued.
func (k *kvRoster) run(ctx context.Context) error {
	defer func() { _ = k.watcher.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-k.watcher.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("roster watcher closed")
			}
			if e != nil {
				k.apply(e)
			}
		drain:
			for {
				select {
				case e, ok := <-k.watcher.Updates():
					if !ok {
						break drain
					}
					if e != nil {
						k.apply(e)
					}
				default:
					break drain
				}
			}
			if err := k.publish(); err != nil {
				k.into.log.Error("roster not applied", "err", err)
			}
		}
	}
}
