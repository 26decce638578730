package zk

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestChecksum(t *testing.T) {
	tests := []struct {
		name   string
		packet string
		want   uint16
	}{
		{"adrobinoga options request", "0b00 0000 f38d 0300 5a4b4661636556657273696f6e00", 0x175A},
		{"adrobinoga odd length", "d007 0000 f38d 0a00 09", 0x6A29},
		{"connect", "e803 0000 0000 0000", 0xFC17},
		{"checksum field ignored", "e803 ffff 0000 0000", 0xFC17},
		{"empty", "", 0xFFFF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Checksum(unhex(t, tt.packet)); got != tt.want {
				t.Errorf("Checksum = %#04x, want %#04x", got, tt.want)
			}
		})
	}
}

// TestEncodePacketWorkedExample checks the TCP frames of the pyzk session in
// the protocol notes byte for byte.
func TestEncodePacketWorkedExample(t *testing.T) {
	tests := []struct {
		name    string
		cmd     Command
		session uint16
		reply   uint16
		data    []byte
		want    string
	}{
		{"client connect", CmdConnect, 0, 0, nil, "50 50 82 7d 08 00 00 00 e8 03 17 fc 00 00 00 00"},
		{"device ack", CmdAckOK, 0x1235, 0, nil, "50 50 82 7d 08 00 00 00 d0 07 fa e5 35 12 00 00"},
		{"prepare buffer", CmdPrepareBuffer, 0x1235, 4, EncodePrepareBuffer(CmdAttLogRRQ, 0, 0),
			"50 50 82 7d 13 00 00 00 df 05 e6 da 35 12 04 00 01 0d 00 00 00 00 00 00 00 00 00"},
		{"read buffer", CmdReadBuffer, 0x1235, 5, EncodeReadBuffer(0, ChunkSizeTCP),
			"50 50 82 7d 10 00 00 00 e0 05 24 e8 35 12 05 00 00 00 00 00 c0 ff 00 00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EncodeTCPFrame(EncodePacket(tt.cmd, tt.session, tt.reply, tt.data))
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("frame = % x, want % x", got, want)
			}
		})
	}
}

// pyzkHeader reproduces pyzk's __create_header: checksum over the old reply
// id with 65534 − sum arithmetic, then reply id + 1 written into the packet.
func pyzkHeader(cmd Command, session, reply uint16, data []byte) []byte {
	buf := binary.LittleEndian.AppendUint16(nil, uint16(cmd))
	buf = append(buf, 0, 0)
	buf = binary.LittleEndian.AppendUint16(buf, session)
	buf = binary.LittleEndian.AppendUint16(buf, reply)
	buf = append(buf, data...)
	sum := 0
	p := buf
	for len(p) > 1 {
		sum += int(p[0]) | int(p[1])<<8
		p = p[2:]
		if sum > 0xFFFF {
			sum -= 0xFFFF
		}
	}
	if len(p) == 1 {
		sum += int(p[0])
	}
	for sum > 0xFFFF {
		sum -= 0xFFFF
	}
	sum = ^sum
	for sum < 0 {
		sum += 0xFFFF
	}
	next := int(reply) + 1
	if next >= 0xFFFF {
		next -= 0xFFFF
	}
	binary.LittleEndian.PutUint16(buf[2:], uint16(sum))
	binary.LittleEndian.PutUint16(buf[6:], uint16(next))
	return buf
}

// TestPyzkChecksumQuirkCancels checks the claim of the notes that pyzk's odd
// checksum arithmetic and its reply-id increment cancel out, including across
// the wrap 65534 → 0, so its packets verify.
func TestPyzkChecksumQuirkCancels(t *testing.T) {
	payloads := [][]byte{nil, {1}, EncodePrepareBuffer(CmdAttLogRRQ, 0, 0), []byte("~SerialNumber\x00")}
	for reply := 0; reply < 0xFFFF; reply += 7 {
		for _, session := range []uint16{0, 0x1235, 0xFFFF} {
			for _, data := range payloads {
				pkt := pyzkHeader(CmdOptionsRRQ, session, uint16(reply), data)
				if _, err := DecodePacket(pkt); err != nil {
					t.Fatalf("reply %d session %d data % x: %v", reply, session, data, err)
				}
			}
		}
	}
	wrapped := pyzkHeader(CmdConnect, 0, 0xFFFE, nil)
	if _, err := DecodePacket(wrapped); err != nil {
		t.Fatalf("wrap: %v", err)
	}
	if got := binary.LittleEndian.Uint16(wrapped[6:]); got != NextReplyID(0xFFFE) {
		t.Errorf("pyzk reply id after 65534 = %d, NextReplyID = %d", got, NextReplyID(0xFFFE))
	}
}

func TestDecodePacket(t *testing.T) {
	valid := EncodePacket(CmdAckOK, 0x1235, 7, []byte("abc"))
	corrupt := bytes.Clone(valid)
	corrupt[9] ^= 0xFF
	tests := []struct {
		name    string
		in      []byte
		want    Packet
		wantErr error
	}{
		{"valid", valid, Packet{Header{CmdAckOK, Checksum(valid), 0x1235, 7}, []byte("abc")}, nil},
		{"header only", EncodePacket(CmdExit, 1, 2, nil), Packet{Header{CmdExit, Checksum(EncodePacket(CmdExit, 1, 2, nil)), 1, 2}, []byte{}}, nil},
		{"bad checksum still decoded", corrupt, Packet{Header{CmdAckOK, Checksum(valid), 0x1235, 7}, corrupt[8:]}, ErrBadChecksum},
		{"short", []byte{1, 2, 3}, Packet{}, ErrShortPacket},
		{"empty", nil, Packet{}, ErrShortPacket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodePacket(tt.in)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got.Header != tt.want.Header || !bytes.Equal(got.Data, tt.want.Data) {
				t.Errorf("packet = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPacketIsEvent(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		want bool
	}{
		{"event", Header{Command: CmdRegEvent, SessionID: EventAttLog}, true},
		{"reply to reg event", Header{Command: CmdAckOK, ReplyID: 0}, false},
		{"reg event request echo", Header{Command: CmdRegEvent, ReplyID: 9}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Packet{Header: tt.h}).IsEvent(); got != tt.want {
				t.Errorf("IsEvent = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNextReplyID(t *testing.T) {
	tests := []struct {
		name string
		in   uint16
		want uint16
	}{
		{"zero", 0, 1},
		{"middle", 1234, 1235},
		{"before wrap", 0xFFFD, 0xFFFE},
		{"wrap", 0xFFFE, 0},
		{"never 65535", 0xFFFF, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextReplyID(tt.in); got != tt.want {
				t.Errorf("NextReplyID(%d) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestCommandString(t *testing.T) {
	tests := []struct {
		cmd  Command
		want string
	}{
		{CmdConnect, "CMD_CONNECT"},
		{CmdAckUnauth, "CMD_ACK_UNAUTH"},
		{CmdPrepareBuffer, "CMD_PREPARE_BUFFER"},
		{CmdAckUnknown, "CMD_ACK_UNKNOWN"},
		{Command(4242), "CMD(4242)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.cmd.String(); got != tt.want {
				t.Errorf("String = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReplyErrorClassification(t *testing.T) {
	tests := []struct {
		reply Command
		want  error
	}{
		{CmdAckUnauth, ErrUnauthorized},
		{CmdAckUnknown, ErrUnsupported},
		{CmdAckErrorCmd, ErrUnsupported},
		{CmdAckError, ErrRejected},
		{CmdAckErrorInit, ErrRejected},
	}
	for _, tt := range tests {
		t.Run(tt.reply.String(), func(t *testing.T) {
			err := error(&ReplyError{Request: CmdConnect, Reply: tt.reply})
			if !errors.Is(err, tt.want) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.want)
			}
			for _, other := range []error{ErrUnauthorized, ErrUnsupported, ErrRejected} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("%v also matches %v", err, other)
				}
			}
		})
	}
}
