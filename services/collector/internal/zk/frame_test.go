package zk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
	"testing/iotest"
)

func TestDecodeTCPFrame(t *testing.T) {
	pkt := EncodePacket(CmdAckOK, 1, 2, []byte("hello"))
	frame := EncodeTCPFrame(pkt)
	tooLarge := bytes.Clone(frame)
	binary.LittleEndian.PutUint32(tooLarge[4:], MaxPacketSize+1)
	short := bytes.Clone(frame)
	binary.LittleEndian.PutUint32(short[4:], 7)
	tests := []struct {
		name    string
		in      []byte
		want    []byte
		wantN   int
		wantErr error
	}{
		{"exact", frame, pkt, len(frame), nil},
		{"followed by more", append(bytes.Clone(frame), 0x50, 0x50), pkt, len(frame), nil},
		{"empty", nil, nil, 0, ErrIncomplete},
		{"partial magic", frame[:3], nil, 0, ErrIncomplete},
		{"prefix only", frame[:8], nil, 0, ErrIncomplete},
		{"partial body", frame[:len(frame)-1], nil, 0, ErrIncomplete},
		{"bad magic", append([]byte{0x50, 0x50, 0x72, 0x82}, frame[4:]...), nil, 0, ErrBadMagic},
		{"bare UDP packet", pkt, nil, 0, ErrBadMagic},
		{"length below header", short, nil, 0, ErrShortPacket},
		{"length too large", tooLarge, nil, 0, ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, err := DecodeTCPFrame(tt.in)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n != tt.wantN || !bytes.Equal(got, tt.want) {
				t.Errorf("DecodeTCPFrame = % x, %d; want % x, %d", got, n, tt.want, tt.wantN)
			}
		})
	}
}

func TestEncodeTCPFrame(t *testing.T) {
	got := EncodeTCPFrame(EncodePacket(CmdConnect, 0, 0, nil))
	want := []byte{0x50, 0x50, 0x82, 0x7d, 0x08, 0, 0, 0}
	if !bytes.Equal(got[:8], want) {
		t.Errorf("prefix = % x, want % x", got[:8], want)
	}
	if len(got) != 16 {
		t.Errorf("len = %d, want 16", len(got))
	}
}

// scriptedReader returns its steps in order: bytes, or an error.
type scriptedReader struct{ steps []any }

func (r *scriptedReader) Read(p []byte) (int, error) {
	if len(r.steps) == 0 {
		return 0, io.EOF
	}
	switch s := r.steps[0].(type) {
	case error:
		r.steps = r.steps[1:]
		return 0, s
	case []byte:
		n := copy(p, s)
		if n == len(s) {
			r.steps = r.steps[1:]
		} else {
			r.steps[0] = s[n:]
		}
		return n, nil
	}
	panic("bad step")
}

func TestFrameReader(t *testing.T) {
	p1 := EncodePacket(CmdPrepareData, 1, 5, EncodePrepareData(70000))
	p2 := EncodePacket(CmdData, 1, 5, bytes.Repeat([]byte{0xAB}, 70000))
	p3 := EncodePacket(CmdAckOK, 1, 5, nil)
	stream := append(append(EncodeTCPFrame(p1), EncodeTCPFrame(p2)...), EncodeTCPFrame(p3)...)
	want := [][]byte{p1, p2, p3}

	tests := []struct {
		name string
		r    io.Reader
	}{
		{"one read", bytes.NewReader(stream)},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(stream))},
		{"half reads", iotest.HalfReader(bytes.NewReader(stream))},
		{"timeout inside a frame keeps the partial bytes", &scriptedReader{steps: []any{
			stream[:20], os.ErrDeadlineExceeded, stream[20:100], os.ErrDeadlineExceeded, stream[100:],
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := NewFrameReader(tt.r)
			var got [][]byte
			for len(got) < len(want) {
				pkt, err := fr.Next()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue // a read deadline: retry
				}
				if err != nil {
					t.Fatalf("Next after %d packets: %v", len(got), err)
				}
				got = append(got, bytes.Clone(pkt))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Errorf("packet %d: got %d bytes, want %d", i, len(got[i]), len(want[i]))
				}
			}
			if _, err := fr.Next(); err != io.EOF {
				t.Errorf("Next at end = %v, want io.EOF", err)
			}
		})
	}
}

func TestFrameReaderErrors(t *testing.T) {
	frame := EncodeTCPFrame(EncodePacket(CmdAckOK, 1, 1, []byte("data")))
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"EOF inside a frame", frame[:len(frame)-2], io.ErrUnexpectedEOF},
		{"EOF inside the prefix", frame[:5], io.ErrUnexpectedEOF},
		{"bad magic", append([]byte("HTTP/1.1 200 OK\r\n"), frame...), ErrBadMagic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := NewFrameReader(bytes.NewReader(tt.in))
			_, err := fr.Next()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Next = %v, want %v", err, tt.wantErr)
			}
			if errors.Is(tt.wantErr, ErrBadMagic) {
				if _, err2 := fr.Next(); !errors.Is(err2, ErrBadMagic) {
					t.Errorf("framing error not sticky: second Next = %v", err2)
				}
			}
		})
	}
}
