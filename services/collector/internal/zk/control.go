package zk

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Disable sends CMD_DISABLEDEVICE: the device shows "working…" and takes no
// punches, which keeps its counts and datasets consistent during a bulk read.
// Prefer WithDisabled, which guarantees the device is enabled again.
func (c *Client) Disable(ctx context.Context) error {
	return c.call(ctx, "disable device", func() error {
		if err := c.simple(ctx, CmdDisableDevice, nil); err != nil {
			return err
		}
		c.disabled = true
		return nil
	})
}

// Enable sends CMD_ENABLEDEVICE: the device takes punches again.
func (c *Client) Enable(ctx context.Context) error {
	return c.call(ctx, "enable device", func() error {
		if err := c.simple(ctx, CmdEnableDevice, nil); err != nil {
			return err
		}
		c.disabled = false
		return nil
	})
}

// WithDisabled disables the device, runs fn, and enables the device again
// whatever happens: when fn returns an error, when it panics (the panic is
// re-raised after the device is enabled), and when ctx is cancelled. The
// re-enable runs under a fresh context of four call timeouts that keeps ctx's
// values but not its cancellation. If the session cannot carry it (the
// connection broke, or the Client was closed), a fresh session is dialled just
// to enable the device. When Disable itself fails without the device
// answering, the enable is attempted too, since the request may have arrived.
//
// The result joins fn's error and the re-enable's error.
func (c *Client) WithDisabled(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if derr := c.Disable(ctx); derr != nil {
		if _, answered := errors.AsType[*ReplyError](derr); answered {
			return derr
		}
		return errors.Join(derr, c.reenable(ctx))
	}
	defer func() {
		p := recover()
		rerr := c.reenable(ctx)
		if p != nil {
			panic(p)
		}
		err = errors.Join(err, rerr)
	}()
	return fn(ctx)
}

// reenable enables the device on this session, or on a fresh one when this
// session cannot carry the request.
func (c *Client) reenable(parent context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 4*c.cfg.timeout)
	defer cancel()
	err := c.Enable(ctx)
	if err == nil {
		return nil
	}
	if _, answered := errors.AsType[*ReplyError](err); answered {
		return err
	}
	fresh, derr := Dial(ctx, c.addr, c.opts...)
	if derr != nil {
		return fmt.Errorf("re-enable device: %w", errors.Join(err, derr))
	}
	defer fresh.Close()
	if ferr := fresh.Enable(ctx); ferr != nil {
		return fmt.Errorf("re-enable device on a fresh session: %w", errors.Join(err, ferr))
	}
	return nil
}

// Version returns the firmware version string (CMD_GET_VERSION), such as
// "Ver 6.60 Apr 26 2016".
func (c *Client) Version(ctx context.Context) (string, error) {
	var v string
	err := c.call(ctx, "read firmware version from", func() error {
		p, err := c.request(ctx, CmdGetVersion, nil)
		if err != nil {
			return err
		}
		if err := expectOK(CmdGetVersion, p); err != nil {
			return err
		}
		v = DecodeVersion(p.Data)
		return nil
	})
	return v, err
}

// Option reads one option (CMD_OPTIONS_RRQ), such as OptionSerialNumber. An
// unknown key fails with an error matching ErrRejected (the device answers
// CMD_ACK_ERROR).
func (c *Client) Option(ctx context.Context, key string) (string, error) {
	var v string
	err := c.call(ctx, fmt.Sprintf("read option %q from", key), func() (err error) {
		v, err = c.option(ctx, key)
		return err
	})
	return v, err
}

func (c *Client) option(ctx context.Context, key string) (string, error) {
	p, err := c.request(ctx, CmdOptionsRRQ, EncodeOptionRequest(key))
	if err != nil {
		return "", err
	}
	if err := expectOK(CmdOptionsRRQ, p); err != nil {
		return "", err
	}
	_, v, err := DecodeOptionReply(p.Data)
	return v, err
}

// Info reads the firmware version and the serial number, platform, device
// name and MAC options. An option the device does not know is left empty;
// any other failure fails the call.
func (c *Client) Info(ctx context.Context) (DeviceInfo, error) {
	var info DeviceInfo
	err := c.call(ctx, "read device info from", func() error {
		p, err := c.request(ctx, CmdGetVersion, nil)
		if err != nil {
			return err
		}
		if p.Command == CmdAckOK {
			info.Firmware = DecodeVersion(p.Data)
		}
		for _, o := range []struct {
			key string
			dst *string
		}{
			{OptionSerialNumber, &info.SerialNumber},
			{OptionPlatform, &info.Platform},
			{OptionDeviceName, &info.DeviceName},
			{OptionMAC, &info.MAC},
		} {
			v, err := c.option(ctx, o.key)
			if _, answered := errors.AsType[*ReplyError](err); err != nil && !answered {
				return fmt.Errorf("option %s: %w", o.key, err)
			}
			*o.dst = v
		}
		return nil
	})
	return info, err
}

// FreeSizes reads the counts and capacities (CMD_GET_FREE_SIZES).
func (c *Client) FreeSizes(ctx context.Context) (Sizes, error) {
	var s Sizes
	err := c.call(ctx, "read free sizes from", func() (err error) {
		s, err = c.freeSizes(ctx)
		return err
	})
	return s, err
}

func (c *Client) freeSizes(ctx context.Context) (Sizes, error) {
	p, err := c.request(ctx, CmdGetFreeSizes, nil)
	if err != nil {
		return Sizes{}, err
	}
	if err := expectOK(CmdGetFreeSizes, p); err != nil {
		return Sizes{}, err
	}
	return DecodeSizes(p.Data)
}

// GetTime reads the device clock (CMD_GET_TIME): a zone-less wall clock in
// time.UTC (see the package comment).
func (c *Client) GetTime(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := c.call(ctx, "read clock of", func() error {
		p, err := c.request(ctx, CmdGetTime, nil)
		if err != nil {
			return err
		}
		if err := expectOK(CmdGetTime, p); err != nil {
			return err
		}
		if len(p.Data) < 4 {
			return fmt.Errorf("time reply of %d bytes: %w", len(p.Data), ErrBadReply)
		}
		t, err = DecodeTime(uint32(p.Data[0]) | uint32(p.Data[1])<<8 | uint32(p.Data[2])<<16 | uint32(p.Data[3])<<24)
		return err
	})
	return t, err
}

// SetTime sets the device clock to t's wall clock in t's own location
// (convert t to the device's zone first), then sends CMD_REFRESHDATA. It fails
// with ErrInvalidTime outside 2000–2099.
func (c *Client) SetTime(ctx context.Context, t time.Time) error {
	packed, err := EncodeTime(t)
	if err != nil {
		return fmt.Errorf("set clock of %s: %w", c.addr, err)
	}
	return c.call(ctx, "set clock of", func() error {
		data := []byte{byte(packed), byte(packed >> 8), byte(packed >> 16), byte(packed >> 24)}
		if err := c.simple(ctx, CmdSetTime, data); err != nil {
			return err
		}
		return c.simple(ctx, CmdRefreshData, nil)
	})
}

// ClearAttendance deletes the device's whole attendance log
// (CMD_CLEAR_ATTLOG, then CMD_REFRESHDATA). Call it only after the records
// read are durably stored, inside WithDisabled so that no punch arrives
// between the read and the clear.
func (c *Client) ClearAttendance(ctx context.Context) error {
	return c.call(ctx, "clear attendance log of", func() error {
		if err := c.simple(ctx, CmdClearAttLog, nil); err != nil {
			return err
		}
		return c.simple(ctx, CmdRefreshData, nil)
	})
}
