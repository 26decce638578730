package zksim

import (
	"errors"
	"net"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// session is one client of the device: a TCP connection, or a UDP peer
// address. Its fields are guarded by Device.mu except out and quit.
type session struct {
	id        uint16
	link      link
	udpKey    string // key in Device.udp, for UDP sessions
	connected bool   // CMD_CONNECT accepted
	authed    bool
	holdsSlot bool
	disabler  bool   // this session disabled the device
	buffer    []byte // dataset staged by CMD_PREPARE_BUFFER
	events    uint32 // CMD_REG_EVENT mask
	lastSeen  time.Time
	ended     bool

	out  chan reply    // replies and events, written in order by writeLoop
	quit chan struct{} // closed when the session ends
}

// reply is what the device sends for one request, or one event.
type reply struct {
	packets [][]byte      // packets (header and data), in order
	delay   time.Duration // wait before the first packet
	cut     int           // when > 0: the packets[cut] is cut short and the link reset (Faults.ResetOnChunk)
	end     bool          // end the session after sending (CMD_EXIT)
}

// link sends packets to one client.
type link interface {
	send(pkt []byte) error
	// cut sends part of pkt and breaks the link; it reports whether the
	// session is over.
	cut(pkt []byte) bool
	close()
}

func newSession(l link) *session {
	return &session{link: l, out: make(chan reply, 64), quit: make(chan struct{}), lastSeen: time.Now()}
}

// writeLoop sends a session's replies in order, applying delays and the gap
// between frames, until the session ends. The gap separates every two
// frames of the session, also the last of one reply and the first of the
// next: node-zklib sends all its CMD_READ_BUFFER requests at once, and
// answers written back to back reach it in one socket read, of which it
// parses only the first frame.
func (d *Device) writeLoop(s *session) {
	defer d.wg.Done()
	var last time.Time // when the previous frame was written
	pace := pacer{rate: d.cfg.Faults.Bandwidth}
	for {
		var r reply
		select {
		case <-s.quit:
			return
		case r = <-s.out:
		}
		if !pause(r.delay, s.quit) {
			return
		}
		for i, pkt := range r.packets {
			if gap := d.cfg.FrameGap; gap > 0 && !last.IsZero() && !pause(time.Until(last.Add(gap)), s.quit) {
				return
			}
			if r.cut > 0 && i == r.cut {
				if s.link.cut(pkt) {
					d.endSession(s)
					return
				}
				break
			}
			if err := pace.send(s, pkt); err != nil {
				d.endSession(s)
				return
			}
			last = time.Now()
		}
		if r.end {
			d.endSession(s)
			return
		}
	}
}

// pause waits for d or until quit is closed, and reports whether it waited.
func pause(d time.Duration, quit <-chan struct{}) bool {
	if d <= 0 {
		select {
		case <-quit:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-quit:
		return false
	}
}

func (d *Device) endSession(s *session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.endSessionLocked(s)
}

// endSessionLocked forgets a session, releases the device slot, re-enables
// the device under AutoEnable, and closes the link.
func (d *Device) endSessionLocked(s *session) {
	if s.ended {
		return
	}
	s.ended = true
	delete(d.sessions, s)
	if s.udpKey != "" {
		delete(d.udp, s.udpKey)
	}
	if s.holdsSlot {
		s.holdsSlot = false
		<-d.slot
	}
	if s.disabler && d.cfg.AutoEnable && !d.enabled {
		d.stats.Enables++
		d.setEnabledLocked(true)
	}
	close(s.quit)
	s.link.close()
}

// tcpLink writes TCP frames to a connection.
type tcpLink struct{ conn net.Conn }

func (l tcpLink) send(pkt []byte) error {
	_, err := l.conn.Write(zk.EncodeTCPFrame(pkt))
	return err
}

func (l tcpLink) cut(pkt []byte) bool {
	frame := zk.EncodeTCPFrame(pkt)
	_, _ = l.conn.Write(frame[:len(frame)/2])
	reset(l.conn)
	return true
}

func (l tcpLink) close() { _ = l.conn.Close() }

// reset closes a TCP connection with an RST instead of a FIN.
func reset(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// udpLink sends datagrams to one peer, dropping some as Faults say.
type udpLink struct {
	d    *Device
	pc   net.PacketConn
	addr net.Addr
}

func (l udpLink) send(pkt []byte) error {
	if l.d.drop() {
		return nil
	}
	_, err := l.pc.WriteTo(pkt, l.addr)
	if errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil // a failed datagram is a lost datagram
}

// cut loses the rest of the reply; UDP has no connection to reset.
func (l udpLink) cut([]byte) bool { return false }

func (l udpLink) close() {}

// drop decides whether the next outgoing datagram is lost.
func (d *Device) drop() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sent++
	f := d.cfg.Faults
	if (f.DropEvery > 0 && d.sent%f.DropEvery == 0) || (f.DropRate > 0 && d.rng.Float64() < f.DropRate) {
		d.stats.DroppedDatagrams++
		return true
	}
	return false
}
