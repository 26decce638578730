package zk

import (
	"encoding/binary"
	"fmt"
	"io"
)

// TCP framing: every packet on a TCP connection is preceded by an 8-byte
// prefix, the magic 50 50 82 7D (u16 LE 0x5050, u16 LE 0x7D82) and a u32 LE
// length that counts the packet (header and data). UDP carries bare packets,
// one per datagram.
const (
	TCPPrefixSize = 8
	tcpMagic1     = 0x5050
	tcpMagic2     = 0x7D82
	// MaxPacketSize bounds the length field of a TCP frame. Real packets are
	// at most a 65 472-byte chunk plus headers; the bound protects readers
	// from garbage lengths.
	MaxPacketSize = 8 << 20
	// MaxUDPData is the most data a device puts in one UDP datagram; clients
	// such as pyzk read datagrams with a 1 032-byte buffer.
	MaxUDPData = 1024
)

// AppendTCPFrame appends the TCP prefix and packet to dst.
func AppendTCPFrame(dst, packet []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, tcpMagic1)
	dst = binary.LittleEndian.AppendUint16(dst, tcpMagic2)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(packet)))
	return append(dst, packet...)
}

// EncodeTCPFrame returns packet with its TCP prefix.
func EncodeTCPFrame(packet []byte) []byte {
	return AppendTCPFrame(make([]byte, 0, TCPPrefixSize+len(packet)), packet)
}

// DecodeTCPFrame decodes the first frame in b. It returns the packet (header
// and data, aliasing b) and the number of bytes the frame occupies. It fails
// with ErrIncomplete when b holds only part of a frame, ErrBadMagic when b does
// not start with the magic, ErrShortPacket when the length is below a header,
// and ErrFrameTooLarge when it exceeds MaxPacketSize.
func DecodeTCPFrame(b []byte) (packet []byte, n int, err error) {
	if len(b) >= 4 && (binary.LittleEndian.Uint16(b[0:]) != tcpMagic1 || binary.LittleEndian.Uint16(b[2:]) != tcpMagic2) {
		return nil, 0, fmt.Errorf("decode TCP frame: % x: %w", b[:4], ErrBadMagic)
	}
	if len(b) < TCPPrefixSize {
		return nil, 0, ErrIncomplete
	}
	size := binary.LittleEndian.Uint32(b[4:])
	switch {
	case size < HeaderSize:
		return nil, 0, fmt.Errorf("decode TCP frame: length %d: %w", size, ErrShortPacket)
	case size > MaxPacketSize:
		return nil, 0, fmt.Errorf("decode TCP frame: length %d: %w", size, ErrFrameTooLarge)
	}
	end := TCPPrefixSize + int(size)
	if len(b) < end {
		return nil, 0, ErrIncomplete
	}
	return b[TCPPrefixSize:end], end, nil
}

// FrameReader reassembles TCP frames from a byte stream by their length
// field, whatever the segmentation. Bytes of a partly received frame are kept
// across read errors, so a read that times out (for example after a deadline
// set on a net.Conn) can be retried without losing step. A FrameReader is not
// safe for concurrent use.
type FrameReader struct {
	r    io.Reader
	buf  []byte
	head int   // start of unconsumed bytes in buf
	err  error // sticky stream error (bad magic, oversized frame)
}

// NewFrameReader returns a FrameReader that reads from r.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: r, buf: make([]byte, 0, 4096)}
}

// Next returns the next packet (header and data, without the TCP prefix). The
// slice is valid until the next call. Errors from the underlying reader are
// returned as they are (io.EOF at a frame boundary, io.ErrUnexpectedEOF inside
// a frame); framing errors (ErrBadMagic, ErrShortPacket, ErrFrameTooLarge) are
// sticky because the stream cannot be resynchronised.
func (fr *FrameReader) Next() ([]byte, error) {
	if fr.err != nil {
		return nil, fr.err
	}
	for {
		pkt, n, err := DecodeTCPFrame(fr.buf[fr.head:])
		if err == nil {
			fr.head += n
			return pkt, nil
		}
		if err != ErrIncomplete {
			fr.err = err
			return nil, err
		}
		if err := fr.fill(); err != nil {
			if err == io.EOF && len(fr.buf) > fr.head {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// fill reads more bytes, first compacting or growing the buffer as needed.
func (fr *FrameReader) fill() error {
	if fr.head > 0 && fr.head == len(fr.buf) {
		fr.buf, fr.head = fr.buf[:0], 0
	}
	need := 4096
	if rest := fr.buf[fr.head:]; len(rest) >= TCPPrefixSize {
		need = TCPPrefixSize + int(binary.LittleEndian.Uint32(rest[4:])) - len(rest)
	}
	if cap(fr.buf)-len(fr.buf) < need {
		if fr.head > 0 && cap(fr.buf)-(len(fr.buf)-fr.head) >= need {
			n := copy(fr.buf, fr.buf[fr.head:])
			fr.buf, fr.head = fr.buf[:n], 0
		} else {
			nb := make([]byte, len(fr.buf)-fr.head, len(fr.buf)-fr.head+max(need, 4096))
			copy(nb, fr.buf[fr.head:])
			fr.buf, fr.head = nb, 0
		}
	}
	n, err := fr.r.Read(fr.buf[len(fr.buf):cap(fr.buf)])
	fr.buf = fr.buf[:len(fr.buf)+n]
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}
