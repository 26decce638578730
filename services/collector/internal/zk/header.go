package zk

import (
	"encoding/binary"
	"fmt"
)

// HeaderSize is the size of the packet header that precedes the data of every
// packet, on both transports.
const HeaderSize = 8

// Header is the 8-byte packet header: four little-endian u16 fields.
type Header struct {
	Command  Command
	Checksum uint16
	// SessionID is 0 in CMD_CONNECT and the device-assigned session id
	// afterwards. In realtime event packets it carries the event flag
	// (EventAttLog …) instead.
	SessionID uint16
	// ReplyID is the request counter; the device echoes it in every packet of
	// its answer. It is 0 in event packets.
	ReplyID uint16
}

// Packet is a decoded header and its data. Data aliases the decoded buffer.
type Packet struct {
	Header
	Data []byte
}

// IsEvent reports whether p is an unsolicited realtime event packet
// (command 500 with reply id 0).
func (p Packet) IsEvent() bool { return p.Command == CmdRegEvent && p.ReplyID == 0 }

// Checksum computes the packet checksum of packet (header followed by data),
// treating the checksum field (bytes 2–3) as zero: the one's complement of the
// one's-complement sum of its little-endian 16-bit words, an odd last byte
// counting as a word with a zero high byte (RFC 1071 over little-endian
// words). packet may be shorter than a header; missing bytes count as zero.
func Checksum(packet []byte) uint16 {
	var sum uint32
	for i := 0; i < len(packet); i += 2 {
		if i == 2 {
			continue // checksum field
		}
		w := uint32(packet[i])
		if i+1 < len(packet) {
			w |= uint32(packet[i+1]) << 8
		}
		sum += w
	}
	for sum > 0xFFFF {
		sum = sum&0xFFFF + sum>>16
	}
	return ^uint16(sum)
}

// AppendPacket appends a packet with a correct checksum to dst and returns the
// extended slice.
func AppendPacket(dst []byte, cmd Command, session, reply uint16, data []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(cmd))
	dst = append(dst, 0, 0)
	dst = binary.LittleEndian.AppendUint16(dst, session)
	dst = binary.LittleEndian.AppendUint16(dst, reply)
	dst = append(dst, data...)
	binary.LittleEndian.PutUint16(dst[start+2:], Checksum(dst[start:]))
	return dst
}

// EncodePacket returns a new packet (header and data, no TCP prefix) with a
// correct checksum.
func EncodePacket(cmd Command, session, reply uint16, data []byte) []byte {
	return AppendPacket(make([]byte, 0, HeaderSize+len(data)), cmd, session, reply, data)
}

// DecodeHeader decodes the first HeaderSize bytes of b. It fails with
// ErrShortPacket when b is shorter than a header; it does not check the
// checksum.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("decode header (%d bytes): %w", len(b), ErrShortPacket)
	}
	return Header{
		Command:   Command(binary.LittleEndian.Uint16(b[0:])),
		Checksum:  binary.LittleEndian.Uint16(b[2:]),
		SessionID: binary.LittleEndian.Uint16(b[4:]),
		ReplyID:   binary.LittleEndian.Uint16(b[6:]),
	}, nil
}

// DecodePacket decodes a whole packet (header and data, without the TCP
// prefix); Data aliases b. When the checksum does not match it returns the
// decoded packet together with an error wrapping ErrBadChecksum, so that a
// lenient peer can log and accept it.
func DecodePacket(b []byte) (Packet, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return Packet{}, err
	}
	p := Packet{Header: h, Data: b[HeaderSize:]}
	if want := Checksum(b); want != h.Checksum {
		return p, fmt.Errorf("decode %v packet: checksum %#04x, computed %#04x: %w", h.Command, h.Checksum, want, ErrBadChecksum)
	}
	return p, nil
}

// NextReplyID returns the reply id that follows id. The counter wraps from
// 65534 to 0 as pyzk's does, so 65535 is never used.
func NextReplyID(id uint16) uint16 {
	if id >= 0xFFFE {
		return 0
	}
	return id + 1
}
