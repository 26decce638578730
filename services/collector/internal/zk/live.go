package zk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// RegisterEvents sends CMD_REG_EVENT with mask (EventAttLog …, or 0 to stop
// events). The device then pushes event packets while the session lasts;
// read them with Events. Nothing is buffered for disconnected clients, so
// live events complement the bulk read, never replace it.
func (c *Client) RegisterEvents(ctx context.Context, mask uint32) error {
	return c.call(ctx, fmt.Sprintf("register events %#x with", mask), func() error {
		return c.simple(ctx, CmdRegEvent, binary.LittleEndian.AppendUint32(nil, mask))
	})
}

// EventHandler receives one realtime event. err is a *RecordError when the
// event did not decode or validate (ev then carries only Flag and Raw); other
// events arrive with err nil. Returning an error stops Events.
type EventHandler func(ev Event, err error) error

// Events reads realtime event packets until ctx is done or fn returns an
// error, and returns that error (ctx.Err() when ctx ends it). Each event
// packet is acknowledged with CMD_ACK_OK (reply id 0, as pyzk and gozk do)
// before fn sees its events; events received earlier while another call waited
// for its reply are delivered first. A packet whose length matches no event
// layout is reported to fn as a *RecordError. Events holds the session:
// other calls wait until it returns. It does not register or unregister; see
// Capture.
func (c *Client) Events(ctx context.Context, fn EventHandler) error {
	release, err := c.acquire(ctx)
	if err != nil {
		return fmt.Errorf("read events from %s: %w", c.addr, err)
	}
	defer release()
	for {
		for len(c.pending) > 0 {
			p := c.pending[0]
			c.pending = c.pending[1:]
			if err := c.deliver(ctx, p, fn); err != nil {
				return err
			}
		}
		p, err := c.readPacket(ctx, time.Now().Add(time.Minute))
		switch {
		case err == nil:
		case errors.Is(err, ErrTimeout):
			continue // idle; keep waiting until ctx is done
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			return fmt.Errorf("read events from %s: %w", c.addr, err)
		}
		if p.IsEvent() {
			if err := c.deliver(ctx, p, fn); err != nil {
				return err
			}
		}
	}
}

// deliver acknowledges an event packet and hands its events to fn.
func (c *Client) deliver(ctx context.Context, p Packet, fn EventHandler) error {
	if err := c.arm(ctx, time.Now().Add(c.cfg.timeout)); err != nil {
		return err
	}
	if err := c.t.send(EncodePacket(CmdAckOK, c.session, 0, nil)); err != nil {
		return fmt.Errorf("acknowledge event from %s: %w", c.addr, c.ioError(ctx, err))
	}
	evs, bad, err := DecodeEvents(p.SessionID, p.Data)
	for _, ev := range evs {
		if err := fn(ev, nil); err != nil {
			return err
		}
	}
	for _, re := range bad {
		if err := fn(Event{Flag: p.SessionID, Raw: re.Raw}, re); err != nil {
			return err
		}
	}
	if err != nil {
		re := recordError(len(evs)+len(bad), p.Data, err)
		re.Err = ErrLayout
		return fn(Event{Flag: p.SessionID, Raw: re.Raw}, re)
	}
	return nil
}

// Capture registers for the events in mask, runs Events until ctx is done
// or fn fails, and then unregisters (CMD_REG_EVENT 0) under a fresh short
// timeout. It returns Events' result.
func (c *Client) Capture(ctx context.Context, mask uint32, fn EventHandler) error {
	if err := c.RegisterEvents(ctx, mask); err != nil {
		return err
	}
	err := c.Events(ctx, fn)
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.timeout)
	defer cancel()
	if uerr := c.RegisterEvents(uctx, 0); uerr != nil && !errors.Is(uerr, ErrClosed) {
		err = errors.Join(err, uerr)
	}
	return err
}
