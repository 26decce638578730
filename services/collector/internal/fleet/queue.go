package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"
	"golang.org/x/sync/errgroup"

	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
)

// workItem is the body of a device's message.
type workItem struct {
	Serial string `json:"serial"`
	Mode   Mode   `json:"mode"`
}

// workSubject is fleet.<mode>.<serial token>.
func workSubject(dev *Device) string {
	return topology.FleetSubjectPrefix + "." + string(dev.Mode) + "." + proto.Token(dev.Serial)
}

// ConsumerConfigs returns the two consumers Run pulls from: polled devices
// and live devices. Bind them (create or update) before Run.
func (f *Fleet) ConsumerConfigs() (poll, live jetstream.ConsumerConfig) {
	mk := func(mode Mode) jetstream.ConsumerConfig {
		return jetstream.ConsumerConfig{
			Durable:       f.cfg.Consumer + "_" + string(mode),
			Description:   "punchflow collector: " + string(mode) + " devices, one held per replica session",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       f.cfg.Lease,
			MaxDeliver:    -1,
			MaxAckPending: 100_000,
			MaxWaiting:    4096,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			FilterSubject: topology.FleetSubjectPrefix + "." + string(mode) + ".>",
		}
	}
	return mk(ModePoll), mk(ModeLive)
}

// Seed makes sure the work queue holds one message per device, and with
// Prune deletes those of devices not in the fleet. It is idempotent and safe
// to run from every replica at once.
func (f *Fleet) Seed(ctx context.Context) error {
	added := 0
	for _, dev := range f.devices {
		body, _ := json.Marshal(workItem{Serial: dev.Serial, Mode: dev.Mode})
		m := &nats.Msg{Subject: workSubject(dev), Data: body, Header: nats.Header{}}
		m.Header.Set(proto.HeaderMsgID, "fleet-"+string(dev.Mode)+"-"+proto.Token(dev.Serial))
		ack, err := f.js.PublishMsg(ctx, m)
		switch {
		case err == nil && !ack.Duplicate:
			added++
		case err == nil, isPerSubjectLimit(err):
			// already queued (held, or waiting for its next run)
		default:
			return fmt.Errorf("seed fleet work item %s: %w", m.Subject, err)
		}
	}
	pruned := 0
	if f.cfg.Prune {
		st, err := f.js.Stream(ctx, f.cfg.Stream)
		if err != nil {
			return fmt.Errorf("fleet stream %s: %w", f.cfg.Stream, err)
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(topology.FleetSubjectPrefix+".>"))
		if err != nil {
			return fmt.Errorf("fleet stream %s subjects: %w", f.cfg.Stream, err)
		}
		for subj := range info.State.Subjects {
			if _, ok := f.byWork[subj]; ok {
				continue
			}
			if err := st.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
				return fmt.Errorf("prune fleet work item %s: %w", subj, err)
			}
			pruned++
			f.log.Info("device no longer in the fleet file: work item deleted", "subject", subj)
		}
	}
	f.log.Info("fleet seeded", "devices", len(f.devices), "added", added, "pruned", pruned, "stream", f.cfg.Stream)
	return nil
}

// isPerSubjectLimit reports the stream's refusal of a second message on a
// subject (DiscardNewPerSubject).
func isPerSubjectLimit(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "maximum messages per subject")
}

// Run serves the devices the work queue hands this replica until ctx ends:
// poll sessions (at most Concurrency at once) and live sessions (at most
// MaxLive). It returns nil after handing the devices it holds back, or the
// error that stopped it.
func (f *Fleet) Run(ctx context.Context, poll, live jetstream.Consumer) error {
	if f.nc == nil {
		return errors.New("fleet: Run needs Deps.NC to confirm leases")
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return f.dispatch(gctx, poll, ModePoll, f.cfg.Concurrency) })
	g.Go(func() error { return f.dispatch(gctx, live, ModeLive, f.cfg.MaxLive) })
	return g.Wait()
}

// dispatch pulls one message per free slot and serves its device.
func (f *Fleet) dispatch(ctx context.Context, cons jetstream.Consumer, mode Mode, slots int) error {
	sem := make(chan struct{}, slots)
	var wg sync.WaitGroup
	defer wg.Wait()
	failures := 0
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		msg, err := cons.Next(jetstream.FetchContext(fctx))
		cancel()
		if err != nil {
			<-sem
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded), errors.Is(err, jetstream.ErrNoMessages):
				failures = 0
			default:
				failures++
				d := Backoff(100*time.Millisecond, 5*time.Second, failures)
				f.log.Warn("fetching fleet work failed", "mode", mode, "err", err, "retry_in", d.Round(time.Millisecond))
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(d):
				}
			}
			continue
		}
		failures = 0
		received := time.Now()
		wg.Go(func() {
			defer func() { <-sem }()
			f.hold(ctx, msg, mode, received)
		})
	}
}

// hold serves the device of msg while holding it, then schedules it.
func (f *Fleet) hold(ctx context.Context, msg jetstream.Msg, mode Mode, received time.Time) {
	dev, ok := f.byWork[msg.Subject()]
	if !ok {
		// Another replica's fleet file has it (a rollout in progress):
		// leave it to them.
		f.log.Warn("work item for a device not in this replica's fleet file; leaving it to the others", "subject", msg.Subject())
		_ = msg.NakWithDelay(f.cfg.Lease)
		return
	}
	holder := f.cfg.Replica
	if meta, err := msg.Metadata(); err == nil {
		holder = fmt.Sprintf("%s#%d", f.cfg.Replica, meta.NumDelivered)
	}
	f.fm.held.WithLabelValues(string(mode)).Inc()
	defer f.fm.held.WithLabelValues(string(mode)).Dec()
	lctx, held := f.keepLease(ctx, msg, dev, received)
	delay := f.serve(lctx, dev, holder, func(ctx context.Context, h *stateHandle) (*report, error) {
		if dev.Mode == ModeLive {
			return f.live(ctx, dev, h)
		}
		return f.poll(ctx, dev, h)
	})
	if !held() {
		return // the server redelivers it after the lease; not ours to touch
	}
	if err := msg.NakWithDelay(delay); err != nil {
		f.log.Warn("device not rescheduled; it is redelivered after the lease", "device", dev.Serial, "err", err)
	}
}

// errLeaseLost cancels a session whose holder could not confirm its lease.
var errLeaseLost = errors.New("fleet lease lost: could not confirm holding the device")

// keepLease reports progress on msg (received at received) every Lease/4,
// waiting for the server's answer each time, and keeps a deadline 3/4 of the
// lease after the last report the server answered (counted from when the
// report was sent, before the server reset its timer). The returned context
// is cancelled when ctx is, or at that deadline: the holder gives the device
// up a quarter of the lease before the server could hand it to another
// replica; held then reports false and the caller must not settle msg. Call
// held once the session is over: it stops the reports.
func (f *Fleet) keepLease(ctx context.Context, msg jetstream.Msg, dev *Device, received time.Time) (context.Context, func() bool) {
	lctx, cancel := context.WithCancelCause(ctx)
	grace := f.cfg.Lease * 3 / 4
	var (
		mu       sync.Mutex
		deadline = received.Add(grace)
		lost     bool
		expire   *time.Timer
	)
	mu.Lock() // the callback reads expire
	defer mu.Unlock()
	expire = time.AfterFunc(time.Until(deadline), func() {
		mu.Lock()
		if now := time.Now(); now.Before(deadline) { // confirmed meanwhile
			expire.Reset(deadline.Sub(now))
			mu.Unlock()
			return
		}
		lost = true
		mu.Unlock()
		f.log.Error("lease lost: giving the device up", "device", dev.Serial, "unconfirmed_for", time.Since(deadline.Add(-grace)).Round(time.Millisecond))
		cancel(errLeaseLost)
	})
	stop := make(chan struct{})
	done := make(chan struct{})
	every := max(f.cfg.Lease/4, 10*time.Millisecond)
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			sent := time.Now()
			rctx, rcancel := context.WithTimeout(lctx, every)
			_, err := f.nc.RequestWithContext(rctx, msg.Reply(), []byte("+WPI"))
			rcancel()
			if err == nil {
				mu.Lock()
				if !lost {
					deadline = sent.Add(grace)
				}
				mu.Unlock()
			} else if lctx.Err() == nil {
				f.log.Debug("lease not confirmed", "device", dev.Serial, "err", err)
			}
			select {
			case <-stop:
				return
			case <-lctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return lctx, func() bool {
		close(stop)
		<-done
		mu.Lock()
		expire.Stop()
		held := !lost
		mu.Unlock()
		cancel(nil)
		return held
	}
}
