package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// live runs a live session with dev until ctx ends or the session fails. It
// registers for attendance events first, so that nothing punched from then
// on is missed (events that arrive while the client waits for a reply are
// kept and delivered afterwards); then a bulk read reconciles whatever
// happened while no session was open; then every event is published as it
// arrives, one acknowledged message at a time.
//
// Every poll interval the session measures the clock and counts, publishes a
// heartbeat, and reads the log again if it holds another number of records
// than the checkpoint plus the events seen (an event the device did not
// send, or a cleared log). The session's run id is the correlation id of
// everything it publishes; heartbeats carry <run id>-<n>.
func (f *Fleet) live(ctx context.Context, dev *Device, h *stateHandle) (*report, error) {
	sessionID := proto.NewCorrelationID()
	log := f.log.With("device", dev.Serial, "site", dev.Site, "run_id", sessionID, "mode", ModeLive)
	r := &report{runID: sessionID, start: time.Now()}
	beats := 0
	beat := func(ctx context.Context) {
		beats++
		f.publishHeartbeat(ctx, r.heartbeat(dev, fmt.Sprintf("%s-%d", sessionID, beats)))
	}
	var c *zk.Client
	registered, started := false, false
	// end closes the session before the last heartbeat: a session that
	// ends because its lease was lost must let go of the device at once,
	// whatever publishing the heartbeat costs.
	end := func(err error) (*report, error) {
		if registered {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 500*time.Millisecond)
			_ = c.RegisterEvents(uctx, 0)
			cancel()
		}
		if c != nil {
			c.Close()
		}
		r.err = err
		if ctx.Err() != nil && err == nil {
			log.Info("live session stopped", "duration", time.Since(r.start).Round(time.Millisecond))
		} else {
			msg := "live session ended"
			if !started {
				msg = "live session could not start"
			}
			log.Warn(msg, "error_class", classify(err, r.reachable), "err", err, "duration", time.Since(r.start).Round(time.Millisecond))
		}
		beat(context.WithoutCancel(ctx))
		if err == nil {
			err = ctx.Err()
		}
		return r, err
	}
	c, err := f.open(ctx, dev, r)
	if err != nil {
		return end(err)
	}
	if err := c.RegisterEvents(ctx, uint32(zk.EventAttLog)); err != nil {
		return end(fmt.Errorf("register for events of %s: %w", dev.Serial, err))
	}
	registered = true
	pk := newPunches(dev, sessionID, proto.NewTraceparent(), r.offset)
	if err := f.sync(ctx, c, dev, h, r, pk, log); err != nil {
		return end(err)
	}
	started = true
	log.Info("live session started", "reconciled", r.published, "rejected", r.rejected, "records", r.sizes.Records)
	beat(ctx)

	events := 0 // EventAttLog events since the last bulk read
	handle := func(ev zk.Event, err error) error {
		if ev.Flag != zk.EventAttLog {
			return nil
		}
		events++
		if err != nil {
			var re *zk.RecordError
			if !errors.As(err, &re) {
				return err
			}
			if derr := f.dlq.DeadLetter(ctx, pk.deadLetter(re, "event"), re.Raw); derr != nil {
				return fmt.Errorf("%w: dead-letter event of %s: %v", errPublish, dev.Serial, derr)
			}
			r.rejected++
			return nil
		}
		rec := ev.Record()
		m, merr := pk.msg(&rec)
		if merr != nil {
			re := &zk.RecordError{Raw: ev.Raw, Reason: merr.Error(), Err: merr}
			if derr := f.dlq.DeadLetter(ctx, pk.deadLetter(re, "event"), ev.Raw); derr != nil {
				return fmt.Errorf("%w: dead-letter event of %s: %v", errPublish, dev.Serial, derr)
			}
			r.rejected++
			return nil
		}
		f.metrics.Received.WithLabelValues("zk_event").Inc()
		if err := publishOne(ctx, f.pub, m, f.cfg.PublishRetry); err != nil {
			return fmt.Errorf("publish event of %s: %w", dev.Serial, err)
		}
		f.metrics.Published.WithLabelValues(proto.KindRawPunch).Inc()
		r.published++
		log.Debug("event published", "user_id", rec.UserID, "device_time", proto.FormatLocalTime(rec.DeviceTime), "id", m.Header.Get(proto.HeaderMsgID))
		return nil
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, dev.PollInterval)
		err := c.Events(wctx, handle)
		cancel()
		if ctx.Err() != nil {
			return end(nil)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return end(err)
		}
		// A window is over: a fresh report for its heartbeat.
		r = &report{runID: sessionID, start: time.Now(), reachable: true, info: r.info}
		if err := f.measure(ctx, c, dev, r); err != nil {
			return end(err)
		}
		pk.offset = r.offset
		if want := h.st.Checkpoint.Count + events; r.sizes.Records != want {
			log.Info("log differs from what events showed: reconciling", "records", r.sizes.Records, "expected", want)
			if err := f.sync(ctx, c, dev, h, r, pk, log); err != nil {
				return end(err)
			}
			events = 0
		}
		beat(ctx)
	}
}
