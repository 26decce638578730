package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sethvargo/go-retry"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/publish"
	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// dial opens a session with dev, retrying transient failures (timeouts,
// refused or reset connections, a busy device) up to DialRetries times with
// jittered exponential backoff. A refused comm key is never retried.
func (f *Fleet) dial(ctx context.Context, dev *Device) (*zk.Client, error) {
	opts := dev.clientOptions(f.cfg.Timeout, f.cfg.ChunkTimeout, f.cfg.Retries)
	bo := retry.WithMaxRetries(uint64(f.cfg.DialRetries), retry.WithJitterPercent(20, retry.NewExponential(f.cfg.DialBackoff)))
	return retry.DoValue(ctx, bo, func(ctx context.Context) (*zk.Client, error) {
		c, err := zk.Dial(ctx, dev.Addr(), opts...)
		if err != nil && !errors.Is(err, zk.ErrUnauthorized) && ctx.Err() == nil {
			return nil, retry.RetryableError(err)
		}
		return c, err
	})
}

// open dials dev and reads what every heartbeat reports: the device's
// identity, its clock offset and the round trip of that exchange, and its
// counts. r keeps what was learnt, also on failure. The caller closes the
// client.
func (f *Fleet) open(ctx context.Context, dev *Device, r *report) (*zk.Client, error) {
	c, err := f.dial(ctx, dev)
	if err != nil {
		// A device that refuses the comm key did answer.
		r.reachable = errors.Is(err, zk.ErrUnauthorized)
		return nil, fmt.Errorf("connect to %s at %s: %w", dev.Serial, dev.Addr(), err)
	}
	r.reachable = true
	if r.info, err = c.Info(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("read device info of %s: %w", dev.Serial, err)
	}
	if sn := r.info.SerialNumber; sn != "" && sn != dev.Serial {
		c.Close()
		return nil, fmt.Errorf("%w: %s answers with serial %q, configured %q: fix the address or the serial in the fleet file",
			errSerialMismatch, dev.Addr(), sn, dev.Serial)
	}
	if err := f.measure(ctx, c, dev, r); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// measure reads the device clock (the offset, and the latency of that one
// exchange) and its counts into r.
func (f *Fleet) measure(ctx context.Context, c *zk.Client, dev *Device, r *report) error {
	t0 := time.Now()
	dt, err := c.GetTime(ctx)
	t1 := time.Now()
	if err != nil {
		return fmt.Errorf("read clock of %s: %w", dev.Serial, err)
	}
	r.latency = t1.Sub(t0)
	r.offset = offsetMS(ClockOffset(dt, t0.Add(r.latency/2), dev.Location))
	if r.sizes, err = c.FreeSizes(ctx); err != nil {
		return fmt.Errorf("read counts of %s: %w", dev.Serial, err)
	}
	r.haveSizes = true
	return nil
}

// ClockOffset is a device's clock minus the collector's at the instant at,
// both as wall clocks in loc (device clocks are zone-less local time). The
// device reads whole seconds, truncated; half a second is added to centre
// the error, so the offset is accurate to about ±0.5 s plus the round trip.
func ClockOffset(device, at time.Time, loc *time.Location) time.Duration {
	w := at.In(loc)
	wall := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), time.UTC)
	return device.Add(500 * time.Millisecond).Sub(wall).Round(time.Millisecond)
}

// poll runs one poll session of dev: connect, measure, read the log inside
// WithDisabled, publish what is new, advance the checkpoint, clear the log
// when configured, and publish the heartbeat.
func (f *Fleet) poll(ctx context.Context, dev *Device, h *stateHandle) (*report, error) {
	r := &report{runID: proto.NewCorrelationID(), start: time.Now()}
	log := f.log.With("device", dev.Serial, "site", dev.Site, "run_id", r.runID)
	c, err := f.open(ctx, dev, r)
	if err == nil {
		pk := newPunches(dev, r.runID, proto.NewTraceparent(), r.offset)
		err = f.sync(ctx, c, dev, h, r, pk, log)
		if cerr := c.Close(); cerr != nil && err == nil {
			log.Debug("close session", "err", cerr)
		}
	}
	r.err = err
	f.publishHeartbeat(context.WithoutCancel(ctx), r.heartbeat(dev, r.runID))
	attrs := []any{"published", r.published, "rejected", r.rejected, "records", r.sizes.Records,
		"clock_offset_ms", deref(r.offset), "duration", time.Since(r.start).Round(time.Millisecond)}
	if err != nil {
		log.Warn("poll failed", append(attrs, "error_class", classify(err, r.reachable), "err", err)...)
	} else {
		log.Info("poll done", attrs...)
	}
	return r, err
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// sync reads dev's whole log and publishes what h's checkpoint says is new,
// then advances the checkpoint. The device is disabled during the read (its
// counts and data stay consistent) and enabled again whatever happens. With
// ClearAfterRead the publishing happens inside the same disabled stretch and
// the log is cleared only once every record read is acknowledged by
// JetStream, so that no punch can arrive unseen between the read and the
// clear.
func (f *Fleet) sync(ctx context.Context, c *zk.Client, dev *Device, h *stateHandle, r *report, pk *punches, log *slog.Logger) error {
	release, err := f.acquireRead(ctx, r.sizes.Records)
	if err != nil {
		return err
	}
	defer release()
	var view *logView
	read := func(ctx context.Context) error {
		recs, bad, err := c.Attendance(ctx)
		if err != nil {
			return fmt.Errorf("read attendance of %s: %w", dev.Serial, err)
		}
		view = newLogView(dev.Serial, recs, bad)
		r.sizes.Records = view.n()
		return nil
	}
	if !dev.ClearAfterRead {
		if err := c.WithDisabled(ctx, read); err != nil {
			return err
		}
		return f.publishNew(ctx, dev, h, view, r, pk, log)
	}
	return c.WithDisabled(ctx, func(ctx context.Context) error {
		if err := read(ctx); err != nil {
			return err
		}
		if err := f.publishNew(ctx, dev, h, view, r, pk, log); err != nil {
			return err
		}
		if view.n() == 0 && view.trailing == nil {
			return nil
		}
		if err := c.ClearAttendance(ctx); err != nil {
			return fmt.Errorf("clear attendance of %s after storing its %d records: %w", dev.Serial, view.n(), err)
		}
		log.Info("attendance log cleared after every record was stored", "records", view.n())
		h.st.Checkpoint = Checkpoint{}
		r.sizes.Records = 0
		if err := h.save(ctx, f.kv, f.cfg.Replica+"/"+r.runID); err != nil {
			// The next session finds a shorter log than the checkpoint and
			// publishes all of it again; duplicates are dropped downstream.
			log.Warn("checkpoint not reset after clearing", "err", err)
		}
		return nil
	})
}

// publishNew publishes the records of v from where h's checkpoint ends (all
// of them when the log no longer continues the checkpoint), dead-letters the
// ones that did not decode with their raw bytes, waits until JetStream
// acknowledged everything, and saves the new checkpoint.
func (f *Fleet) publishNew(ctx context.Context, dev *Device, h *stateHandle, v *logView, r *report, pk *punches, log *slog.Logger) error {
	cp := h.st.Checkpoint
	start, why := Plan(cp, v.n(), v.id)
	if why != "" {
		log.Warn("checkpoint not continued", "reason", why, "checkpoint_count", cp.Count, "records", v.n())
	}
	f.metrics.Received.WithLabelValues("zk_record").Add(float64(v.n() - start))
	b := publish.NewBatch(f.pub, publish.Options{Window: f.cfg.PublishWindow, Budget: f.cfg.PublishRetry,
		Kind: proto.KindRawPunch, Metrics: f.metrics, Log: log})
	deadLetter := func(re *zk.RecordError, what string) error {
		if err := f.dlq.DeadLetter(ctx, pk.deadLetter(re, what), re.Raw); err != nil {
			return fmt.Errorf("%w: dead-letter %s record %d of %s: %v", errPublish, what, re.Index, dev.Serial, err)
		}
		r.rejected++
		return nil
	}
	for i := start; i < v.n(); i++ {
		rec, bad := v.at(i)
		if bad == nil {
			m, err := pk.msg(rec)
			if err == nil {
				if err := b.Add(ctx, m); err != nil {
					return err
				}
				continue
			}
			bad = &zk.RecordError{Index: i, Raw: rec.Raw, Reason: err.Error()}
		}
		if err := deadLetter(bad, "attlog"); err != nil {
			return err
		}
	}
	if t := v.trailing; t != nil && rawID(dev.Serial, t.Raw) != cp.Trailing {
		if err := deadLetter(t, "attlog"); err != nil {
			return err
		}
	}
	if err := b.Wait(ctx); err != nil {
		if errors.Is(err, publish.ErrNotAcknowledged) {
			err = fmt.Errorf("%w: %w", errPublish, err)
		}
		return fmt.Errorf("publish punches of %s: %w", dev.Serial, err)
	}
	r.published += b.Acked()
	h.st.Checkpoint = v.checkpoint(cp)
	return h.save(ctx, f.kv, f.cfg.Replica+"/"+r.runID)
}
