package zk

import (
	"net"
	"time"
)

// transport moves whole packets (header and data) over one connection.
type transport interface {
	// send writes one packet.
	send(pkt []byte) error
	// recv returns the next packet; the slice is valid until the next recv.
	recv() ([]byte, error)
	setDeadline(t time.Time) error
	close() error
	isUDP() bool
}

// tcpTransport frames packets with the TCP prefix and reassembles incoming
// frames by length.
type tcpTransport struct {
	conn net.Conn
	fr   *FrameReader
	wbuf []byte
}

func newTCPTransport(conn net.Conn) *tcpTransport {
	return &tcpTransport{conn: conn, fr: NewFrameReader(conn)}
}

func (t *tcpTransport) send(pkt []byte) error {
	t.wbuf = AppendTCPFrame(t.wbuf[:0], pkt)
	_, err := t.conn.Write(t.wbuf)
	return err
}

func (t *tcpTransport) recv() ([]byte, error)         { return t.fr.Next() }
func (t *tcpTransport) setDeadline(d time.Time) error { return t.conn.SetDeadline(d) }
func (t *tcpTransport) close() error                  { return t.conn.Close() }
func (t *tcpTransport) isUDP() bool                   { return false }

// udpTransport sends one packet per datagram on a connected UDP socket.
type udpTransport struct {
	conn net.Conn
	buf  []byte
}

func newUDPTransport(conn net.Conn) *udpTransport {
	return &udpTransport{conn: conn, buf: make([]byte, 64<<10)}
}

func (t *udpTransport) send(pkt []byte) error {
	_, err := t.conn.Write(pkt)
	return err
}

func (t *udpTransport) recv() ([]byte, error) {
	n, err := t.conn.Read(t.buf)
	if err != nil {
		return nil, err
	}
	return t.buf[:n], nil
}

func (t *udpTransport) setDeadline(d time.Time) error { return t.conn.SetDeadline(d) }
func (t *udpTransport) close() error                  { return t.conn.Close() }
func (t *udpTransport) isUDP() bool                   { return true }
