// Package app is the healthwatch service. It consumes heartbeats and turns
// them into device states (online, slow, disconnected, unauthorized,
// storage nearly full, clock drift, never seen) kept with their history in
// JetStream KV; it queues alerts on state changes and twice-daily reports
// and payroll escalations on the ALERTS stream, delivers them to Slack,
// Teams, signed webhooks, Alertmanager and e-mail through one durable
// consumer per channel, and serves a status page and JSON APIs.
//
// Any number of replicas can run: state is written with compare-and-swap,
// notification ids are deterministic (so JetStream's de-duplication keeps
// one copy however many replicas queue it), each channel's consumer hands
// a notification to one replica at a time, and a delivery marker created
// after a channel accepts it stops any redelivery from sending it again.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/dispose"
	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/healthwatch/internal/channel"
	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
	"github.com/punchflow/punchflow/services/healthwatch/internal/page"
	"github.com/punchflow/punchflow/services/healthwatch/internal/policy"
	"github.com/punchflow/punchflow/services/healthwatch/internal/state"
)

// Run is healthwatch's whole program; see cli.RunFunc. With "report" as
// the first argument it runs the report command instead of the service.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "report" {
		return runReport(ctx, args[1:], getenv, stdout, stderr)
	}
	fs := flag.NewFlagSet("healthwatch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	cfg.register(fs)
	if help, err := service.Parse(fs, args, getenv, cfg.Validate); help || err != nil {
		return err
	}
	pol, err := loadPolicy(cfg.PolicyFile, getenv)
	if err != nil {
		return err
	}
	senders, err := newSenders(pol)
	if err != nil {
		return err
	}
	rt, err := service.Start(ctx, "healthwatch", cfg.Common, fs, stderr)
	if err != nil {
		return err
	}
	a, err := start(ctx, rt, cfg, pol, senders)
	if err != nil {
		rt.Close()
		return err
	}
	return rt.Run(ctx, a.workers()...)
}

func loadPolicy(path string, getenv func(string) string) (*policy.Policy, error) {
	if path == "" {
		return policy.Default(), nil
	}
	return policy.Load(path, getenv)
}

func newSenders(pol *policy.Policy) (map[string]channel.Sender, error) {
	out := map[string]channel.Sender{}
	for _, name := range pol.ChannelNames() {
		s, err := channel.New(pol.Channels[name], nil, nil)
		if err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, nil
}

// app is one running healthwatch.
type app struct {
	cfg      Config
	rt       *service.Runtime
	pol      *policy.Policy
	fold     folder
	store    *store
	marks    jetstream.KeyValue
	hbCons   jetstream.Consumer
	chanCons map[string]jetstream.Consumer
	senders  map[string]channel.Sender
	dispose  *dispose.Disposer
	m        *watchMetrics
	comp     notify.Composer
	now      func() time.Time
	// caughtUp turns true once the heartbeat backlog was consumed; until
	// then time-based states are not evaluated (a restart would otherwise
	// see every device as disconnected until the backlog is read).
	caughtUp atomic.Bool
}

func start(ctx context.Context, rt *service.Runtime, cfg Config, pol *policy.Policy, senders map[string]channel.Sender) (*app, error) {
	if cfg.Provision {
		if err := ensureAlerts(ctx, rt.JS, cfg.Alerts, cfg.Topology); err != nil {
			return nil, err
		}
	}
	kv, err := rt.JS.KeyValue(ctx, cfg.Topology.HealthBucket)
	if err != nil {
		return nil, fmt.Errorf("health bucket %s: %w (start with --provision or create it)", cfg.Topology.HealthBucket, err)
	}
	marks, err := rt.JS.KeyValue(ctx, cfg.Alerts.Bucket)
	if err != nil {
		return nil, fmt.Errorf("alerts bucket %s: %w (start with --provision or create it)", cfg.Alerts.Bucket, err)
	}
	a := &app{cfg: cfg, rt: rt, pol: pol, fold: folder{pol: pol}, store: newStore(kv, rt.Log), marks: marks,
		senders: senders, chanCons: map[string]jetstream.Consumer{}, m: newWatchMetrics(rt.Registry),
		comp: notify.Composer{Loc: pol.Zone, Link: pol.StatusURL}, now: time.Now,
		dispose: dispose.New(rt.JS, proto.StageHealth, cfg.MaxDeliver, rt.Metrics, rt.Log)}
	rt.Ops.AddCheck("kv "+cfg.Topology.HealthBucket, func(ctx context.Context) error {
		if !a.store.ready() {
			return errors.New("state not loaded yet")
		}
		_, err := kv.Status(ctx)
		return err
	})
	a.hbCons, err = rt.BindConsumer(ctx, cfg.Topology.HealthStream, topology.Consumer(topology.ConsumerOptions{
		Durable:        cfg.Durable,
		FilterSubjects: []string{proto.PrefixHealth + ".>"},
		AckWait:        cfg.AckWait,
		MaxDeliver:     cfg.MaxDeliver,
		MaxAckPending:  1024,
	}))
	if err != nil {
		return nil, err
	}
	for _, name := range pol.ChannelNames() {
		cons, err := rt.BindConsumer(ctx, cfg.Alerts.Stream, jetstream.ConsumerConfig{
			Durable:       notifyDurable(cfg.Durable, name),
			Description:   "punchflow healthwatch notifications for channel " + name,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.NotifyAckWait,
			MaxDeliver:    -1,
			MaxAckPending: 1000,
			// A channel added later starts with what is queued from then on.
			DeliverPolicy: jetstream.DeliverNewPolicy,
			// The consumer of a channel removed from the policy goes away once
			// nothing it could still deliver is left in the stream.
			InactiveThreshold: cfg.Alerts.MaxAge,
			FilterSubjects:    []string{alertsPrefix + ".>"},
		})
		if err != nil {
			return nil, err
		}
		a.chanCons[name] = cons
	}
	pg := page.New(func(context.Context) ([]health.Device, error) { return a.store.devices(), nil },
		page.Options{Loc: pol.Zone, Refresh: cfg.PageRefresh})
	rt.Ops.Handle("GET /{$}", http.HandlerFunc(pg.ServeHTML))
	rt.Ops.Handle("GET /api/devices", http.HandlerFunc(pg.ServeAPI))
	rt.Ops.Handle("GET /api/sources", http.HandlerFunc(a.listSources))
	rt.Ops.Handle("GET /api/sources/{key}", http.HandlerFunc(a.getSource))
	rt.Log.Info("policy", "devices", len(pol.Devices), "sites", len(pol.Sites), "teams", len(pol.Teams),
		"channels", fmt.Sprint(channelList(pol)), "reports", fmt.Sprint(pol.Reports), "zone", pol.Zone.String())
	return a, nil
}

func channelList(pol *policy.Policy) []string {
	var out []string
	for _, n := range pol.ChannelNames() {
		out = append(out, pol.Channels[n].String())
	}
	return out
}

// notifyDurable names the consumer of one channel.
func notifyDurable(base, ch string) string { return base + "-notify-" + proto.Token(ch) }

func (a *app) workers() []service.Worker {
	ws := []service.Worker{a.store.watch, a.consume, a.evaluateLoop, a.scheduleLoop}
	for _, name := range a.pol.ChannelNames() {
		ws = append(ws, func(ctx context.Context) error { return a.dispatch(ctx, name) })
	}
	return ws
}

// ---- heartbeats ----

func (a *app) consume(ctx context.Context) error {
	cc, err := a.hbCons.Consume(func(msg jetstream.Msg) {
		start := time.Now()
		a.rt.Metrics.Received.WithLabelValues(proto.KindHeartbeat).Inc()
		hctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.dispose.Settle(hctx, msg, a.handle(hctx, msg)); err != nil {
			a.rt.Log.Warn("settle", "subject", msg.Subject(), "err", err)
		}
		a.rt.Metrics.Handler.Observe(time.Since(start).Seconds())
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		a.rt.Log.Warn("consume", "err", err)
	}))
	if err != nil {
		return fmt.Errorf("consume heartbeats: %w", err)
	}
	<-ctx.Done()
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(a.rt.ShutdownTimeout()):
		cc.Stop()
	}
	return nil
}

// handle folds one heartbeat into its record with compare-and-swap, then
// queues the notifications the fold produced. A failure to queue them is
// not the heartbeat's: they wait in the record's outbox for the evaluator.
func (a *app) handle(ctx context.Context, msg jetstream.Msg) error {
	hb, err := proto.DecodeHeartbeat(msg.Data())
	if err != nil {
		return fault.NewPermanent(proto.ReasonDecode, err)
	}
	key := state.Key(hb)
	now := a.now()
	var out outcome
	rec, changed, err := a.store.update(ctx, key, func(prev *record) (record, bool) {
		r, o, ch := a.fold.heartbeat(prev, hb, now)
		out = o
		return r, ch
	})
	if err != nil {
		return fault.NewTransient(err)
	}
	if !changed {
		return nil
	}
	out.count(a.m)
	if src := rec.Source; src.Heartbeats == 1 || src.Since.Equal(hb.ObservedAt) {
		a.rt.Log.Info("source state", "source", rec.Source.Source, "kind", rec.Source.Kind, "status", rec.Source.Status, "correlation_id", hb.RunID)
	}
	for _, t := range out.trs {
		a.logTransition(rec, t)
	}
	if len(rec.Outbox) > 0 {
		if err := a.flush(ctx, key, rec.Outbox); err != nil {
			a.rt.Log.Warn("queue notifications; the evaluator will retry", "key", key, "err", err)
		}
	}
	return nil
}

func (a *app) logTransition(rec record, t health.Transition) {
	if rec.Device == nil {
		return
	}
	verb := "cleared"
	if t.Raised {
		verb = "raised"
	}
	a.rt.Log.Info("device condition "+verb, "device", rec.Device.Serial, "site", rec.Device.Site, "condition", string(t.Condition),
		"at", t.At, "state", string(rec.Device.State), "detail", t.Detail)
}

// flush publishes items to the alerts stream (ids de-duplicate repeats)
// and then removes them from the record's outbox.
func (a *app) flush(ctx context.Context, key string, items []notify.Item) error {
	for _, it := range items {
		if err := a.publish(ctx, it); err != nil {
			return err
		}
	}
	done := map[string]bool{}
	for _, it := range items {
		done[it.ID] = true
	}
	_, _, err := a.store.update(ctx, key, func(prev *record) (record, bool) {
		if prev == nil {
			return record{}, false
		}
		r := *prev
		n := len(r.Outbox)
		var keep []notify.Item
		for _, it := range r.Outbox {
			if !done[it.ID] {
				keep = append(keep, it)
			}
		}
		r.Outbox = keep
		return r, len(keep) != n
	})
	return err
}

func (a *app) publish(ctx context.Context, it notify.Item) error {
	b, err := json.Marshal(it)
	if err != nil {
		return fmt.Errorf("encode notification %s: %w", it.ID, err)
	}
	who := it.Type
	switch {
	case it.Event != nil:
		who = it.Event.Device
	case it.Report != nil && it.Report.Team != "":
		who = it.Report.Team
	}
	if _, err := a.rt.JS.Publish(ctx, alertSubject(it.Type, who), b, jetstream.WithMsgID(it.ID)); err != nil {
		return fmt.Errorf("publish notification %s: %w", it.ID, err)
	}
	a.rt.Metrics.Published.WithLabelValues("notification").Inc()
	return nil
}

// ---- time ----

// evaluateLoop runs evaluate every EvaluateEvery until ctx ends.
func (a *app) evaluateLoop(ctx context.Context) error {
	t := time.NewTicker(a.cfg.EvaluateEvery)
	defer t.Stop()
	for {
		a.evaluate(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// evaluate creates the records of configured devices not seen yet, applies
// the time-based rules to every device once the heartbeat backlog is
// consumed, queues any notifications left in outboxes, and updates the
// per-state gauge. Every replica runs it; compare-and-swap makes each
// transition happen once.
func (a *app) evaluate(ctx context.Context) {
	if !a.store.ready() {
		return
	}
	now := a.now()
	for _, serial := range a.pol.Serials() {
		key := deviceKey(serial)
		if _, ok := a.store.get(key); ok {
			continue
		}
		if _, _, err := a.store.update(ctx, key, func(prev *record) (record, bool) {
			if prev != nil {
				return *prev, false
			}
			return a.fold.configured(serial, now), true
		}); err != nil {
			a.rt.Log.Warn("create configured device", "device", serial, "err", err)
		}
	}
	// Caught up only once the configured devices exist too, so that the
	// first report after a fresh start lists them.
	if !a.caughtUp.Load() {
		info, err := a.hbCons.Info(ctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			a.caughtUp.Store(true)
			a.rt.Log.Info("heartbeat backlog consumed; evaluating time-based states")
		}
	}
	keys, recs := a.store.snapshot()
	counts := map[health.State]int{}
	for i, key := range keys {
		rec := recs[i]
		if rec.Device == nil {
			continue
		}
		if a.caughtUp.Load() {
			if _, _, need := a.fold.evaluate(&rec, now); need {
				var out outcome
				next, changed, err := a.store.update(ctx, key, func(prev *record) (record, bool) {
					r, o, ch := a.fold.evaluate(prev, now)
					out = o
					return r, ch
				})
				if err != nil {
					a.rt.Log.Warn("evaluate device", "key", key, "err", err)
				} else if changed {
					out.count(a.m)
					for _, t := range out.trs {
						a.logTransition(next, t)
					}
					rec = next
				}
			}
		}
		if len(rec.Outbox) > 0 {
			if err := a.flush(ctx, key, rec.Outbox); err != nil {
				a.rt.Log.Warn("queue notifications", "key", key, "err", err)
			}
		}
		counts[rec.Device.State]++
	}
	for _, s := range health.States() {
		a.m.devices.WithLabelValues(string(s)).Set(float64(counts[s]))
	}
}

// ---- HTTP ----

// listSources serves every device and source seen so far, sorted by kind
// and name: the source view of the state.
func (a *app) listSources(w http.ResponseWriter, _ *http.Request) {
	_, recs := a.store.snapshot()
	out := []state.Source{}
	for _, r := range recs {
		if r.Heartbeats > 0 {
			out = append(out, r.Source)
		}
	}
	sortSources(out)
	writeJSON(w, out)
}

func (a *app) getSource(w http.ResponseWriter, r *http.Request) {
	rec, ok := a.store.get(r.PathValue("key"))
	if !ok || rec.Heartbeats == 0 {
		http.Error(w, "no such source; keys look like source.<name> or device.<serial>", http.StatusNotFound)
		return
	}
	writeJSON(w, rec.Source)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
