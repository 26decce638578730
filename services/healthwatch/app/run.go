// Package app is the healthwatch service: it consumes heartbeats, keeps the
// last state of every device and source in JetStream KV (so a restart
// forgets nothing and replicas share it), and serves that state as JSON.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"

	"github.com/punchflow/punchflow/platform/dispose"
	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/healthwatch/internal/state"
)

// Run is healthwatch's whole program; see cli.RunFunc.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthwatch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	cfg.register(fs)
	if help, err := service.Parse(fs, args, getenv, cfg.Validate); help || err != nil {
		return err
	}
	rt, err := service.Start(ctx, "healthwatch", cfg.Common, fs, stderr)
	if err != nil {
		return err
	}
	kv, err := rt.JS.KeyValue(ctx, cfg.Topology.HealthBucket)
	if err != nil {
		rt.Close()
		return fmt.Errorf("health bucket %s: %w (start with --provision or create it)", cfg.Topology.HealthBucket, err)
	}
	rt.Ops.AddCheck("kv "+cfg.Topology.HealthBucket, func(ctx context.Context) error {
		_, err := kv.Status(ctx)
		return err
	})
	cons, err := rt.BindConsumer(ctx, cfg.Topology.HealthStream, topology.Consumer(topology.ConsumerOptions{
		Durable:        cfg.Durable,
		FilterSubjects: []string{proto.PrefixHealth + ".>"},
		AckWait:        cfg.AckWait,
		MaxDeliver:     cfg.MaxDeliver,
		MaxAckPending:  1024,
	}))
	if err != nil {
		rt.Close()
		return err
	}
	w := &watcher{rt: rt, kv: kv, dispose: dispose.New(rt.JS, proto.StageHealth, cfg.MaxDeliver, rt.Metrics, rt.Log)}
	rt.Ops.Handle("GET /api/sources", http.HandlerFunc(w.listSources))
	rt.Ops.Handle("GET /api/sources/{key}", http.HandlerFunc(w.getSource))
	return rt.Run(ctx, func(ctx context.Context) error { return w.consume(ctx, cons) })
}

type watcher struct {
	rt      *service.Runtime
	kv      jetstream.KeyValue
	dispose *dispose.Disposer
}

func (w *watcher) consume(ctx context.Context, cons jetstream.Consumer) error {
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		start := time.Now()
		w.rt.Metrics.Received.WithLabelValues(proto.KindHeartbeat).Inc()
		hctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.dispose.Settle(hctx, msg, w.handle(hctx, msg)); err != nil {
			w.rt.Log.Warn("settle", "subject", msg.Subject(), "err", err)
		}
		w.rt.Metrics.Handler.Observe(time.Since(start).Seconds())
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		w.rt.Log.Warn("consume", "err", err)
	}))
	if err != nil {
		return fmt.Errorf("consume heartbeats: %w", err)
	}
	<-ctx.Done()
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(w.rt.ShutdownTimeout()):
		cc.Stop()
	}
	return nil
}

// handle folds one heartbeat into the source's KV entry with
// compare-and-swap, so that two replicas never overwrite each other.
func (w *watcher) handle(ctx context.Context, msg jetstream.Msg) error {
	hb, err := proto.DecodeHeartbeat(msg.Data())
	if err != nil {
		return fault.NewPermanent(proto.ReasonDecode, err)
	}
	key := state.Key(hb)
	for attempt := 0; attempt < 5; attempt++ {
		var prev *state.Source
		var rev uint64
		e, err := w.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fault.NewTransient(fmt.Errorf("read state %s: %w", key, err))
		default:
			var s state.Source
			if err := json.Unmarshal(e.Value(), &s); err != nil {
				return fault.NewTransient(fmt.Errorf("state %s is corrupt: %w", key, err))
			}
			prev, rev = &s, e.Revision()
		}
		next, changed := state.Apply(prev, hb)
		if !changed {
			return nil
		}
		b, err := json.Marshal(next)
		if err != nil {
			return fault.NewPermanent(proto.ReasonInvalid, err)
		}
		if prev == nil {
			_, err = w.kv.Create(ctx, key, b)
		} else {
			_, err = w.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			if prev == nil || prev.Status != next.Status {
				w.rt.Log.Info("source state", "source", next.Source, "kind", next.Kind, "status", next.Status, "correlation_id", hb.RunID)
			}
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fault.NewTransient(fmt.Errorf("write state %s: %w", key, err))
		}
	}
	return fault.NewTransient(fmt.Errorf("state %s: too many concurrent updates", key))
}

// States returns every source's state, sorted by kind and source.
func (w *watcher) States(ctx context.Context) ([]state.Source, error) {
	lister, err := w.kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := []state.Source{}
	for key := range lister.Keys() {
		e, err := w.kv.Get(ctx, key)
		if err != nil {
			continue // deleted since it was listed
		}
		var s state.Source
		if err := json.Unmarshal(e.Value(), &s); err == nil {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Source < out[j].Source
	})
	return out, nil
}

func (w *watcher) listSources(rw http.ResponseWriter, r *http.Request) {
	states, err := w.States(r.Context())
	if err != nil {
		http.Error(rw, "read state: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(rw, states)
}

func (w *watcher) getSource(rw http.ResponseWriter, r *http.Request) {
	e, err := w.kv.Get(r.Context(), r.PathValue("key"))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		http.Error(rw, "no such source; keys look like source.<name> or device.<serial>", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(rw, "read state: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_, _ = rw.Write(e.Value())
}

func writeJSON(rw http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_, _ = rw.Write(b)
}
