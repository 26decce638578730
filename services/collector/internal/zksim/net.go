package zksim

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

func (d *Device) acceptTCP() {
	defer d.wg.Done()
	for {
		conn, err := d.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		d.wg.Add(1)
		go d.serveTCP(conn)
	}
}

// serveTCP reads frames from one connection and queues the answers. The
// connection may close without a byte (pyzk's probe connection).
func (d *Device) serveTCP(conn net.Conn) {
	defer d.wg.Done()
	d.mu.Lock()
	d.stats.Connections++
	if d.closed || d.cfg.Faults.RefuseConnect {
		if !d.closed {
			d.stats.Refused++
		}
		d.mu.Unlock()
		reset(conn)
		return
	}
	s := newSession(tcpLink{conn})
	d.sessions[s] = struct{}{}
	d.wg.Add(1)
	go d.writeLoop(s)
	d.mu.Unlock()
	defer d.endSession(s)

	fr := zk.NewFrameReader(conn)
	for {
		b, err := fr.Next()
		if err != nil {
			return
		}
		p, ok := d.decode(b)
		if !ok {
			continue
		}
		if p.Command == zk.CmdConnect && !d.takeSlot(s) {
			return
		}
		d.mu.Lock()
		r, answer := d.handleLocked(s, p)
		d.mu.Unlock()
		if !answer {
			continue
		}
		select {
		case s.out <- r:
		case <-s.quit:
			return
		}
	}
}

// decode decodes an inbound packet, counting bad checksums and dropping them
// under StrictChecksum.
func (d *Device) decode(b []byte) (zk.Packet, bool) {
	p, err := zk.DecodePacket(b)
	switch {
	case err == nil:
		return p, true
	case errors.Is(err, zk.ErrBadChecksum):
		d.mu.Lock()
		d.stats.BadChecksums++
		d.mu.Unlock()
		return p, !d.cfg.StrictChecksum
	default:
		return zk.Packet{}, false
	}
}

// takeSlot makes a TCP session the device's only session under
// Faults.OneSession before its CMD_CONNECT is handled. It reports false when
// the connection must end: refused (after a reset) or the device closing.
// Under SessionsBlock it waits until the slot is free.
func (d *Device) takeSlot(s *session) bool {
	d.mu.Lock()
	policy := d.cfg.Faults.OneSession
	if policy == SessionsUnlimited || s.holdsSlot || d.cfg.Faults.IgnoreConnect || d.cfg.Faults.RefuseConnect {
		d.mu.Unlock()
		return true
	}
	d.expireUDPLocked()
	d.mu.Unlock()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case d.slot <- struct{}{}:
			d.mu.Lock()
			defer d.mu.Unlock()
			if s.ended {
				<-d.slot
				return false
			}
			s.holdsSlot = true
			return true
		default:
		}
		if policy == SessionsRefuse {
			d.mu.Lock()
			d.stats.Refused++
			d.mu.Unlock()
			if tl, ok := s.link.(tcpLink); ok {
				reset(tl.conn)
			}
			return false
		}
		select {
		case <-tick.C:
			d.mu.Lock()
			d.expireUDPLocked()
			d.mu.Unlock()
		case <-s.quit:
			return false
		case <-d.done:
			return false
		}
	}
}

// serveUDP answers datagrams; sessions are keyed by the peer address.
func (d *Device) serveUDP() {
	defer d.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		_ = d.pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, addr, err := d.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				d.mu.Lock()
				d.expireUDPLocked()
				d.mu.Unlock()
			}
			continue
		}
		p, ok := d.decode(append([]byte(nil), buf[:n]...))
		if !ok {
			continue
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return
		}
		d.expireUDPLocked()
		key := addr.String()
		s := d.udp[key]
		if s == nil {
			s = newSession(udpLink{d: d, pc: d.pc, addr: addr})
			s.udpKey = key
			d.udp[key] = s
			d.sessions[s] = struct{}{}
			d.wg.Add(1)
			go d.writeLoop(s)
		}
		r, answer := d.handleLocked(s, p)
		d.mu.Unlock()
		if answer {
			select {
			case s.out <- r:
			default: // the writer is backed up: the datagram is lost
			}
		}
	}
}

// expireUDPLocked ends UDP sessions idle longer than UDPSessionTimeout.
func (d *Device) expireUDPLocked() {
	for _, s := range d.udp {
		if time.Since(s.lastSeen) > d.cfg.UDPSessionTimeout {
			d.endSessionLocked(s)
		}
	}
}
