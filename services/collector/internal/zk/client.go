package zk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// Client is one session with one device.
//
// A Client is safe for concurrent use, but the protocol allows one request in
// flight per session, so calls are serialised: a call waits (honouring its
// context) until the previous one returns. Events holds the session for as
// long as it runs. Close may be called at any time, from any goroutine; it
// interrupts a call in progress.
//
// Every method that talks to the device takes a context first. Cancelling it
// interrupts the call at once; the session stays usable because the Client
// matches replies to requests by reply id and skips stale ones. After a
// transport failure (an error matching ErrConnection on TCP) the Client is
// unusable: Close it and Dial again.
type Client struct {
	addr string
	opts []Option
	cfg  config
	t    transport // set by Dial, never replaced

	sem chan struct{} // the call slot; the fields below are guarded by it
	// session is the device-assigned session id.
	session uint16
	reply   uint16
	broken  error // transport failure; the Client is unusable
	// disabled is true between a successful Disable and Enable.
	disabled bool
	pending  []Packet // events received while waiting for a reply

	mu     sync.Mutex // guards seq and closed, and serialises deadline changes
	seq    uint64     // identifies the call in progress for context.AfterFunc
	closed bool

	closeOnce sync.Once
	closeErr  error
}

// maxPending bounds the events kept while a call waits for its reply; beyond
// it the oldest are dropped (devices do not buffer events either).
const maxPending = 1024

// initialReplyID makes the first packet (CMD_CONNECT) carry reply id 0, as
// pyzk's does.
const initialReplyID = 0xFFFE

// Dial connects to the device at addr ("host:port", usually port 4370) and
// opens a session: CMD_CONNECT, then CMD_AUTH with the comm key if the device
// asks for one. It fails with an error matching ErrUnauthorized when the
// device wants a key and none or a wrong one was given, ErrTimeout when the
// device does not answer, ErrConnection when the connection is refused or
// reset, and ErrRejected when the device answers CMD_CONNECT with an error
// (a busy UDP device). The caller must Close the Client.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	network := "tcp"
	if cfg.udp {
		network = "udp"
	}
	conn, err := (&net.Dialer{Timeout: cfg.timeout}).DialContext(ctx, network, addr)
	if err != nil {
		var ne net.Error
		switch {
		case ctx.Err() != nil:
		case errors.As(err, &ne) && ne.Timeout():
			err = fmt.Errorf("%w: %w", ErrTimeout, err)
		default:
			err = fmt.Errorf("%w: %w", ErrConnection, err)
		}
		return nil, fmt.Errorf("dial %s %s: %w", network, addr, err)
	}
	c := &Client{addr: addr, opts: opts, cfg: cfg, sem: make(chan struct{}, 1), reply: initialReplyID}
	if cfg.udp {
		c.t = newUDPTransport(conn)
	} else {
		c.t = newTCPTransport(conn)
	}
	if err := c.connect(ctx); err != nil {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		_ = conn.Close()
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return c, nil
}

func (c *Client) connect(ctx context.Context) error {
	release, err := c.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	p, err := c.request(ctx, CmdConnect, nil)
	if err != nil {
		return err
	}
	c.session = p.SessionID
	switch p.Command {
	case CmdAckOK:
		return nil
	case CmdAckUnauth:
		if !c.cfg.hasKey {
			return fmt.Errorf("device requires a comm key: %w", &ReplyError{Request: CmdConnect, Reply: p.Command})
		}
		key := MakeCommKey(c.cfg.commKey, c.session, DefaultTicks)
		p, err := c.request(ctx, CmdAuth, key[:])
		if err != nil {
			return fmt.Errorf("authenticate: %w", err)
		}
		if err := expectOK(CmdAuth, p); err != nil {
			return fmt.Errorf("authenticate: comm key rejected: %w", err)
		}
		return nil
	default:
		return &ReplyError{Request: CmdConnect, Reply: p.Command}
	}
}

// Addr returns the address the Client was dialled with.
func (c *Client) Addr() string { return c.addr }

// SessionID returns the session id the device assigned.
func (c *Client) SessionID() uint16 { return c.session }

// Close ends the session and closes the connection. If no call is in
// progress it first re-enables the device when this session disabled it, then
// sends CMD_EXIT, each with a short timeout and ignoring failures; otherwise it
// only closes the connection, which interrupts the call. Close is idempotent:
// later calls return the first call's result.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		select {
		case c.sem <- struct{}{}:
			if c.broken == nil {
				ctx, cancel := context.WithTimeout(context.Background(), min(c.cfg.timeout, time.Second))
				if c.disabled {
					if p, err := c.exchange(ctx, CmdEnableDevice, nil, 1); err == nil && p.Command == CmdAckOK {
						c.disabled = false
					}
				}
				_, _ = c.exchange(ctx, CmdExit, nil, 1)
				cancel()
			}
			<-c.sem
		default:
		}
		c.mu.Lock()
		c.closed = true
		c.closeErr = c.t.close()
		c.mu.Unlock()
	})
	return c.closeErr
}

// acquire takes the call slot and arranges for a cancellation of ctx to
// interrupt blocked I/O. The returned function releases both.
func (c *Client) acquire(ctx context.Context) (release func(), err error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	closed := c.closed
	c.seq++
	seq := c.seq
	c.mu.Unlock()
	switch {
	case closed:
		<-c.sem
		return nil, ErrClosed
	case c.broken != nil:
		err := c.broken
		<-c.sem
		return nil, fmt.Errorf("%w: session unusable after earlier failure: %v", ErrConnection, err)
	}
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.seq == seq && !c.closed {
			_ = c.t.setDeadline(time.Unix(1, 0))
		}
	})
	return func() {
		stop()
		c.mu.Lock()
		c.seq++
		c.mu.Unlock()
		<-c.sem
	}, nil
}

// arm sets the I/O deadline for the next operation to the earlier of
// deadline and ctx's deadline, or reports that ctx is already done.
func (c *Client) arm(ctx context.Context, deadline time.Time) error {
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.closed {
		return ErrClosed
	}
	return c.t.setDeadline(deadline)
}

// ioError classifies an I/O failure.
func (c *Client) ioError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			return context.DeadlineExceeded // ctx's deadline was the I/O deadline
		}
		return ErrTimeout
	}
	if !c.t.isUDP() {
		c.broken = err
	}
	return fmt.Errorf("%w: %w", ErrConnection, err)
}

// send writes one request packet with the next reply id and returns that id.
func (c *Client) send(ctx context.Context, cmd Command, data []byte) (uint16, error) {
	c.reply = NextReplyID(c.reply)
	if err := c.arm(ctx, time.Now().Add(c.cfg.timeout)); err != nil {
		return 0, err
	}
	if err := c.t.send(EncodePacket(cmd, c.session, c.reply, data)); err != nil {
		if !c.t.isUDP() {
			c.broken = err // a partly written frame puts the stream out of step
		}
		return 0, c.ioError(ctx, err)
	}
	return c.reply, nil
}

// readPacket returns the next well-formed packet received before deadline.
// Packets with a bad checksum are skipped. Data aliases the transport's
// buffer until the next read.
func (c *Client) readPacket(ctx context.Context, deadline time.Time) (Packet, error) {
	for {
		if err := c.arm(ctx, deadline); err != nil {
			return Packet{}, err
		}
		b, err := c.t.recv()
		if err != nil {
			if errors.Is(err, ErrBadMagic) || errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrShortPacket) {
				c.broken = err
				return Packet{}, fmt.Errorf("%w: %w", ErrConnection, err)
			}
			return Packet{}, c.ioError(ctx, err)
		}
		p, err := DecodePacket(b)
		if err != nil {
			continue // corrupt packet: treat as lost
		}
		return p, nil
	}
}

// await returns the next packet answering request id, stashing realtime
// events and skipping stale replies to earlier requests.
func (c *Client) await(ctx context.Context, id uint16, deadline time.Time) (Packet, error) {
	for {
		p, err := c.readPacket(ctx, deadline)
		if err != nil {
			return Packet{}, err
		}
		if p.IsEvent() {
			c.stash(p)
			continue
		}
		if p.ReplyID == id {
			return p, nil
		}
	}
}

func (c *Client) stash(p Packet) {
	p.Data = bytes.Clone(p.Data)
	if len(c.pending) == maxPending {
		c.pending = c.pending[1:]
	}
	c.pending = append(c.pending, p)
}

// exchange sends a request and returns its reply (Data copied), resending
// after a timeout up to attempts times in all.
func (c *Client) exchange(ctx context.Context, cmd Command, data []byte, attempts int) (Packet, error) {
	var err error
	for range max(attempts, 1) {
		var id uint16
		if id, err = c.send(ctx, cmd, data); err != nil {
			return Packet{}, err
		}
		var p Packet
		if p, err = c.await(ctx, id, time.Now().Add(c.cfg.timeout)); err == nil {
			p.Data = bytes.Clone(p.Data)
			return p, nil
		}
		if !errors.Is(err, ErrTimeout) {
			return Packet{}, err
		}
	}
	return Packet{}, err
}

// request is exchange with the configured retries on UDP and none on TCP.
func (c *Client) request(ctx context.Context, cmd Command, data []byte) (Packet, error) {
	attempts := 1
	if c.t.isUDP() {
		attempts += c.cfg.retries
	}
	return c.exchange(ctx, cmd, data, attempts)
}

// simple sends a request whose only acceptable answer is CMD_ACK_OK.
func (c *Client) simple(ctx context.Context, cmd Command, data []byte) error {
	p, err := c.request(ctx, cmd, data)
	if err != nil {
		return err
	}
	return expectOK(cmd, p)
}

func expectOK(req Command, p Packet) error {
	if p.Command != CmdAckOK {
		return &ReplyError{Request: req, Reply: p.Command}
	}
	return nil
}

// call runs fn holding the call slot and wraps its error with op and the
// device address.
func (c *Client) call(ctx context.Context, op string, fn func() error) error {
	release, err := c.acquire(ctx)
	if err == nil {
		defer release()
		err = fn()
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, c.addr, err)
	}
	return nil
}
