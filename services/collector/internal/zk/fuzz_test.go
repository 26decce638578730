package zk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"slices"
	"testing"
	"testing/iotest"
)

// The seed corpus of each target lives in testdata/fuzz/<target>/ and runs
// with plain go test; go test -fuzz=<target> explores further.

func FuzzDecodeHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodePacket(data)
		switch {
		case err == nil:
			if got := EncodePacket(p.Command, p.SessionID, p.ReplyID, p.Data); !bytes.Equal(got, data) {
				t.Fatalf("re-encoded % x, input % x", got, data)
			}
		case errors.Is(err, ErrBadChecksum):
			got := EncodePacket(p.Command, p.SessionID, p.ReplyID, p.Data)
			if bytes.Equal(got, data) || !bytes.Equal(got[4:], data[4:]) || !bytes.Equal(got[:2], data[:2]) {
				t.Fatalf("bad-checksum packet % x re-encodes as % x", data, got)
			}
		case errors.Is(err, ErrShortPacket):
			if len(data) >= HeaderSize {
				t.Fatalf("ErrShortPacket for %d bytes", len(data))
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

func FuzzDecodeFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		pkt, n, err := DecodeTCPFrame(data)
		if err == nil {
			if !bytes.Equal(EncodeTCPFrame(pkt), data[:n]) {
				t.Fatalf("frame does not re-encode")
			}
		} else if !errors.Is(err, ErrIncomplete) && !errors.Is(err, ErrBadMagic) && !errors.Is(err, ErrShortPacket) && !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("unexpected error %v", err)
		}
		// A FrameReader fed one byte at a time agrees with DecodeTCPFrame.
		got, rerr := NewFrameReader(iotest.OneByteReader(bytes.NewReader(data))).Next()
		switch {
		case err == nil:
			if rerr != nil || !bytes.Equal(got, pkt) {
				t.Fatalf("FrameReader = % x, %v; DecodeTCPFrame = % x", got, rerr, pkt)
			}
		case errors.Is(err, ErrIncomplete):
			if rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
				t.Fatalf("FrameReader on incomplete input = %v", rerr)
			}
		default:
			for _, sentinel := range []error{ErrBadMagic, ErrShortPacket, ErrFrameTooLarge} {
				if errors.Is(err, sentinel) && !errors.Is(rerr, sentinel) {
					t.Fatalf("FrameReader = %v, DecodeTCPFrame = %v", rerr, err)
				}
			}
		}
	})
}

func FuzzDecodeAttendance(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, size int) {
		recs, bad, err := DecodeAttendance(data, size)
		if err != nil {
			if !errors.Is(err, ErrLayout) || validAttendanceSize(size) {
				t.Fatalf("DecodeAttendance(size %d) = %v", size, err)
			}
			return
		}
		want := len(data) / size
		if len(data)%size != 0 {
			want++
		}
		if len(recs)+len(bad) != want {
			t.Fatalf("%d records + %d bad, want %d in all", len(recs), len(bad), want)
		}
		for _, b := range bad {
			if !errors.Is(b, ErrBadRecord) || len(b.Raw) == 0 || len(b.Raw) > size {
				t.Fatalf("bad record %+v", b)
			}
		}
		for _, r := range recs {
			if err := r.Validate(); err != nil {
				t.Fatalf("decoded record does not validate: %v", err)
			}
			if len(r.Raw) != size {
				t.Fatalf("Raw is %d bytes, want %d", len(r.Raw), size)
			}
			enc, err := AppendAttendance(nil, r, size)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", r, err)
			}
			back, err := DecodeAttendanceRecord(enc)
			back.Raw, r.Raw = nil, nil
			if err != nil || !reflect.DeepEqual(back, r) {
				t.Fatalf("round trip: %+v, %v; want %+v", back, err, r)
			}
		}
	})
}

func FuzzDecodeUsers(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, size int) {
		users, bad, err := DecodeUsers(data, size)
		if err != nil {
			if !errors.Is(err, ErrLayout) || size == UserSize28 || size >= UserSize72 {
				t.Fatalf("DecodeUsers(size %d) = %v", size, err)
			}
			return
		}
		want := len(data) / size
		if len(data)%size != 0 {
			want++
		}
		if len(users)+len(bad) != want {
			t.Fatalf("%d users + %d bad, want %d in all", len(users), len(bad), want)
		}
		for _, u := range users {
			if err := u.Validate(); err != nil {
				t.Fatalf("decoded user does not validate: %v", err)
			}
			enc, err := AppendUser(nil, u, size)
			if err != nil {
				continue // e.g. a name with bytes after its NUL cannot be rebuilt; decoding is what matters
			}
			back, err := DecodeUser(enc)
			if err != nil || !reflect.DeepEqual(back, u) {
				t.Fatalf("round trip: %+v, %v; want %+v", back, err, u)
			}
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, bad, err := DecodeEvents(EventAttLog, data)
		if err != nil && !errors.Is(err, ErrLayout) {
			t.Fatalf("unexpected error %v", err)
		}
		total := 0
		for _, ev := range evs {
			total += len(ev.Raw)
			if err := ev.Record().Validate(); err != nil {
				t.Fatalf("decoded event does not validate: %v", err)
			}
			enc, err := AppendEvent(nil, ev, len(ev.Raw))
			if err != nil {
				t.Fatalf("re-encode %+v: %v", ev, err)
			}
			back, _, err := DecodeEvents(EventAttLog, enc)
			if err != nil || len(back) != 1 || back[0].UserID != ev.UserID || !back[0].Time.Equal(ev.Time) || back[0].State != ev.State || back[0].VerifyMode != ev.VerifyMode {
				t.Fatalf("round trip: %+v, %v; want %+v", back, err, ev)
			}
		}
		for _, b := range bad {
			total += len(b.Raw)
		}
		if total > len(data) {
			t.Fatalf("events cover %d bytes of %d", total, len(data))
		}
	})
}

func FuzzDecodeTime(f *testing.F) {
	f.Fuzz(func(t *testing.T, v uint32) {
		tm, err := DecodeTime(v)
		if err != nil {
			if !errors.Is(err, ErrInvalidTime) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if back, err := EncodeTime(tm); err != nil || back != v {
			t.Fatalf("EncodeTime(DecodeTime(%d)) = %d, %v", v, back, err)
		}
		b, err := EncodeEventTime(tm)
		if err != nil {
			t.Fatalf("EncodeEventTime(%v): %v", tm, err)
		}
		if et, err := DecodeEventTime(b[:]); err != nil || !et.Equal(tm) {
			t.Fatalf("event time round trip: %v, %v; want %v", et, err, tm)
		}
	})
}

func FuzzDecodeEventTime(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		tm, err := DecodeEventTime(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidTime) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		enc, err := EncodeEventTime(tm)
		if err != nil || !bytes.Equal(enc[:], b) {
			t.Fatalf("EncodeEventTime = % x, %v; want % x", enc, err, b)
		}
	})
}

func FuzzDecodeSizes(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSizes(data)
		if err != nil {
			if !errors.Is(err, ErrBadReply) || len(data) >= SizesLenOld {
				t.Fatalf("DecodeSizes(%d bytes) = %v", len(data), err)
			}
			return
		}
		back, err := DecodeSizes(EncodeSizes(s))
		if err != nil || back != s {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, s)
		}
		if want := int(int32(binary.LittleEndian.Uint32(data[32:]))); s.Records != want {
			t.Fatalf("Records = %d, want %d", s.Records, want)
		}
	})
}

func FuzzDecodeOptionReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		k, v, err := DecodeOptionReply(data)
		if err != nil {
			if !errors.Is(err, ErrBadReply) || bytes.IndexByte(data, '=') >= 0 {
				t.Fatalf("DecodeOptionReply(%q) = %v", data, err)
			}
			return
		}
		k2, v2, err := DecodeOptionReply(EncodeOptionReply(k, v))
		if err != nil || k2 != k || v2 != v {
			t.Fatalf("round trip: %q, %q, %v; want %q, %q", k2, v2, err, k, v)
		}
	})
}

func FuzzDecodeDataset(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := DecodeDataset(data)
		if err != nil {
			if !errors.Is(err, ErrBadDataset) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if enc := EncodeDataset(recs); !bytes.Equal(enc, data[:len(enc)]) {
			t.Fatalf("re-encoded % x is not a prefix of % x", enc, data)
		}
		if slices.Compare(recs, data[4:4+len(recs)]) != 0 {
			t.Fatalf("records are not the bytes after the prefix")
		}
	})
}
