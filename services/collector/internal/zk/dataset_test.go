package zk

import (
	"bytes"
	"errors"
	"testing"
)

func TestEncodePrepareBuffer(t *testing.T) {
	tests := []struct {
		name  string
		inner Command
		fct   uint32
		want  string
	}{
		{"attendance", CmdAttLogRRQ, 0, "01 0d 00 00 00 00 00 00 00 00 00"},
		{"users", CmdUserTempRRQ, FctUser, "01 09 00 05 00 00 00 00 00 00 00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EncodePrepareBuffer(tt.inner, tt.fct, 0)
			if !bytes.Equal(got, unhex(t, tt.want)) {
				t.Errorf("EncodePrepareBuffer = % x, want %s", got, tt.want)
			}
			inner, fct, ext, err := DecodePrepareBuffer(got)
			if err != nil || inner != tt.inner || fct != tt.fct || ext != 0 {
				t.Errorf("DecodePrepareBuffer = %v, %d, %d, %v", inner, fct, ext, err)
			}
		})
	}
	if _, _, _, err := DecodePrepareBuffer(make([]byte, 10)); !errors.Is(err, ErrBadReply) {
		t.Errorf("DecodePrepareBuffer(10 bytes) = %v, want ErrBadReply", err)
	}
}

func TestBufferMessages(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"buffer size", EncodeBufferSize(2000004), "00 84 84 1e 00 84 84 1e 00 00 00 00 00"},
		{"read buffer", EncodeReadBuffer(65472, 65472), "c0 ff 00 00 c0 ff 00 00"},
		{"prepare data", EncodePrepareData(1024), "00 04 00 00 00 00 00 00"},
		{"dataset", EncodeDataset([]byte{1, 2, 3}), "03 00 00 00 01 02 03"},
		{"empty dataset", EncodeDataset(nil), "00 00 00 00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Equal(tt.got, unhex(t, tt.want)) {
				t.Errorf("got % x, want %s", tt.got, tt.want)
			}
		})
	}
	if n, err := DecodeBufferSize(EncodeBufferSize(2000004)); err != nil || n != 2000004 {
		t.Errorf("DecodeBufferSize = %d, %v", n, err)
	}
	if s, n, err := DecodeReadBuffer(EncodeReadBuffer(7, 9)); err != nil || s != 7 || n != 9 {
		t.Errorf("DecodeReadBuffer = %d, %d, %v", s, n, err)
	}
	if n, err := DecodePrepareData(EncodePrepareData(77)); err != nil || n != 77 {
		t.Errorf("DecodePrepareData = %d, %v", n, err)
	}
	for name, err := range map[string]error{
		"buffer size":  func() error { _, err := DecodeBufferSize([]byte{0, 1, 2, 3}); return err }(),
		"read buffer":  func() error { _, _, err := DecodeReadBuffer(make([]byte, 7)); return err }(),
		"prepare data": func() error { _, err := DecodePrepareData([]byte{1, 2, 3}); return err }(),
	} {
		if !errors.Is(err, ErrBadReply) {
			t.Errorf("short %s: err = %v, want ErrBadReply", name, err)
		}
	}
}

func TestDecodeDataset(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    []byte
		wantErr bool
	}{
		{"records", []byte{3, 0, 0, 0, 1, 2, 3}, []byte{1, 2, 3}, false},
		{"empty", []byte{0, 0, 0, 0}, []byte{}, false},
		{"slack after the declared length", []byte{2, 0, 0, 0, 1, 2, 3}, []byte{1, 2}, false},
		{"truncated", []byte{4, 0, 0, 0, 1, 2, 3}, nil, true},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, 1}, nil, true},
		{"no prefix", []byte{1, 0, 0}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeDataset(tt.in)
			if (err != nil) != tt.wantErr || !bytes.Equal(got, tt.want) {
				t.Errorf("DecodeDataset = % x, %v; want % x (error %v)", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadDataset) {
				t.Errorf("err = %v, want ErrBadDataset", err)
			}
		})
	}
}
