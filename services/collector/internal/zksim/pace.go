package zksim

import (
	"net"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// paceChunk is the largest piece of a TCP frame written at once under
// Faults.Bandwidth.
const paceChunk = 2048

// pacer spaces out what one session sends to a byte rate (Faults.Bandwidth).
// It is used by the session's writeLoop only.
type pacer struct {
	rate int       // bytes per second; 0 = unlimited
	next time.Time // when the link is free again
}

// send writes pkt to s's link, each piece once the link would have carried
// the bytes before it. It fails when a write fails or the session ends.
func (p *pacer) send(s *session, pkt []byte) error {
	if p.rate <= 0 {
		return s.link.send(pkt)
	}
	tl, ok := s.link.(tcpLink)
	if !ok {
		if !p.wait(len(pkt), s.quit) {
			return net.ErrClosed
		}
		return s.link.send(pkt)
	}
	frame := zk.EncodeTCPFrame(pkt)
	for len(frame) > 0 {
		n := min(len(frame), paceChunk)
		if !p.wait(n, s.quit) {
			return net.ErrClosed
		}
		if _, err := tl.conn.Write(frame[:n]); err != nil {
			return err
		}
		frame = frame[n:]
	}
	return nil
}

// wait books n bytes on the link and waits until they may be sent: the
// first byte of a piece leaves when the link has carried the ones before.
func (p *pacer) wait(n int, quit <-chan struct{}) bool {
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(time.Duration(n) * time.Second / time.Duration(p.rate))
	return pause(at.Sub(now), quit)
}
