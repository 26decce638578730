package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// ProbeOptions say how to reach a device to probe.
type ProbeOptions struct {
	UDP     bool
	CommKey *uint32
	Timeout time.Duration
	// Location is the zone the device clock is compared in (default UTC).
	Location *time.Location
}

// ProbeReport is what a probe learnt about a device: the onboarding check
// before it is added to a fleet file.
type ProbeReport struct {
	Addr      string
	Transport string
	CommKey   string // "not required", "accepted"
	Session   uint16
	Info      zk.DeviceInfo
	Latency   time.Duration // round trip of CMD_GET_TIME
	Clock     time.Time     // device wall clock
	Zone      string
	Offset    time.Duration
	Sizes     zk.Sizes
	// Records is how many attendance records were read, of which Bad did
	// not decode; RecordSize is their layout (8, 16, 40 or more bytes).
	Records    int
	Bad        int
	RecordSize int
	First      time.Time // device time of the first and last records read
	Last       time.Time
	// Users is how many users were read; UserSize is their layout (28 or
	// 72 bytes), found by reading the table again with the 72-byte layout
	// forced: only the right layout yields the device's user count.
	Users    int
	UserSize int
	ReadTime time.Duration // how long reading the whole log took
}

// Probe connects to the device at addr, reads its identity, clock, counts,
// users and whole attendance log (inside WithDisabled: the device is enabled
// again afterwards) and reports what it found. It publishes nothing. A comm
// key the device wants and was not given fails with an error matching
// zk.ErrUnauthorized.
func Probe(ctx context.Context, addr string, o ProbeOptions) (ProbeReport, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	opts := []zk.Option{zk.WithTimeout(o.Timeout)}
	r := ProbeReport{Addr: addr, Transport: "tcp", CommKey: "not required", Zone: o.Location.String()}
	if o.UDP {
		opts = append(opts, zk.WithUDP())
		r.Transport = "udp"
	}
	if o.CommKey != nil {
		opts = append(opts, zk.WithCommKey(*o.CommKey))
	}
	c, err := zk.Dial(ctx, addr, opts...)
	if err != nil {
		if errors.Is(err, zk.ErrUnauthorized) {
			if o.CommKey == nil {
				return r, fmt.Errorf("%w: the device wants a comm key: give --commkey", err)
			}
			return r, fmt.Errorf("%w: the device refused the comm key given", err)
		}
		return r, err
	}
	defer c.Close()
	if o.CommKey != nil {
		r.CommKey = "given (accepted, or not required)"
	}
	r.Session = c.SessionID()
	if r.Info, err = c.Info(ctx); err != nil {
		return r, fmt.Errorf("read device info: %w", err)
	}
	t0 := time.Now()
	if r.Clock, err = c.GetTime(ctx); err != nil {
		return r, fmt.Errorf("read clock: %w", err)
	}
	r.Latency = time.Since(t0)
	r.Offset = ClockOffset(r.Clock, t0.Add(r.Latency/2), o.Location)
	if r.Sizes, err = c.FreeSizes(ctx); err != nil {
		return r, fmt.Errorf("read counts: %w", err)
	}
	err = c.WithDisabled(ctx, func(ctx context.Context) error {
		users, badUsers, err := c.Users(ctx)
		if err != nil {
			return fmt.Errorf("read users: %w", err)
		}
		r.Users = len(users) + len(badUsers)
		start := time.Now()
		recs, bad, err := c.Attendance(ctx)
		if err != nil {
			return fmt.Errorf("read attendance: %w", err)
		}
		r.ReadTime = time.Since(start)
		v := newLogView(r.Info.SerialNumber, recs, bad)
		r.Records, r.Bad, r.RecordSize = v.n(), len(v.bad), v.size
		if v.trailing != nil {
			r.Bad++
		}
		if len(recs) > 0 {
			r.First, r.Last = recs[0].DeviceTime, recs[len(recs)-1].DeviceTime
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	c.Close()
	if r.Users > 0 {
		r.UserSize = probeUserSize(ctx, addr, opts, r.Sizes.Users)
	}
	return r, nil
}

// probeUserSize reads the user table in a second session with the 72-byte
// layout forced: a 72-byte table yields exactly count users, a 28-byte one
// does not. It returns 0 when the check cannot be made.
func probeUserSize(ctx context.Context, addr string, opts []zk.Option, count int) int {
	c, err := zk.Dial(ctx, addr, append(opts, zk.WithUserSize(zk.UserSize72))...)
	if err != nil {
		return 0
	}
	defer c.Close()
	users, bad, err := c.Users(ctx)
	switch {
	case err != nil:
		return 0
	case len(users)+len(bad) == count && len(bad) == 0:
		return zk.UserSize72
	}
	return zk.UserSize28
}

// WriteText prints the report for an operator.
func (r ProbeReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	p("device", "%s over %s (session %#04x, comm key %s)", r.Addr, r.Transport, r.Session, r.CommKey)
	p("serial", "%s", orDash(r.Info.SerialNumber))
	p("model", "%s / %s", orDash(r.Info.DeviceName), orDash(r.Info.Platform))
	p("firmware", "%s", orDash(r.Info.Firmware))
	p("mac", "%s", orDash(r.Info.MAC))
	p("latency", "%.1f ms (one request)", float64(r.Latency.Microseconds())/1000)
	p("clock", "%s (device) offset %+.1f s against this machine in %s", r.Clock.Format("2006-01-02 15:04:05"), r.Offset.Seconds(), r.Zone)
	used := 0.0
	if r.Sizes.RecordCapacity > 0 {
		used = 100 * float64(r.Sizes.Records) / float64(r.Sizes.RecordCapacity)
	}
	p("users", "%d of %d, layout %s", r.Sizes.Users, r.Sizes.UserCapacity, layoutName(r.UserSize))
	p("records", "%d of %d (%.1f%% used), layout %s", r.Sizes.Records, r.Sizes.RecordCapacity, used, layoutName(r.RecordSize))
	span := "-"
	if !r.First.IsZero() {
		span = r.First.Format("2006-01-02 15:04:05") + " … " + r.Last.Format("2006-01-02 15:04:05")
	}
	p("read", "%d records in %v, %d did not decode; %s", r.Records, r.ReadTime.Round(time.Millisecond), r.Bad, span)
	return tw.Flush()
}

func layoutName(size int) string {
	if size == 0 {
		return "unknown (empty)"
	}
	return fmt.Sprintf("%d-byte records", size)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
