package zk

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestDecodeOptionReply(t *testing.T) {
	tests := []struct {
		name      string
		data      []byte
		key, val  string
		wantError bool
	}{
		{"adrobinoga platform capture", []byte("~Platform=ZEM760_TFT\x00"), "~Platform", "ZEM760_TFT", false},
		{"no NUL", []byte("~SerialNumber=ABC123"), "~SerialNumber", "ABC123", false},
		{"value with '='", []byte("X=a=b\x00"), "X", "a=b", false},
		{"empty value", []byte("MAC=\x00"), "MAC", "", false},
		{"junk after NUL", []byte("~DeviceName=F18\x00\xff\xff"), "~DeviceName", "F18", false},
		{"no '='", []byte("garbage\x00"), "", "", true},
		{"empty", nil, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, v, err := DecodeOptionReply(tt.data)
			if (err != nil) != tt.wantError || k != tt.key || v != tt.val {
				t.Errorf("DecodeOptionReply = %q, %q, %v; want %q, %q (error %v)", k, v, err, tt.key, tt.val, tt.wantError)
			}
			if err != nil && !errors.Is(err, ErrBadReply) {
				t.Errorf("err = %v, want ErrBadReply", err)
			}
		})
	}
}

func TestOptionRequestRoundTrip(t *testing.T) {
	for _, key := range []string{OptionSerialNumber, OptionPlatform, OptionDeviceName, OptionMAC} {
		t.Run(key, func(t *testing.T) {
			req := EncodeOptionRequest(key)
			if req[len(req)-1] != 0 || DecodeOptionRequest(req) != key {
				t.Errorf("request % x does not round-trip %q", req, key)
			}
			k, v, err := DecodeOptionReply(EncodeOptionReply(key, "value"))
			if err != nil || k != key || v != "value" {
				t.Errorf("reply round trip = %q, %q, %v", k, v, err)
			}
		})
	}
}

func TestDecodeVersion(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"F18", []byte("Ver 6.60 Apr 26 2016\x00"), "Ver 6.60 Apr 26 2016"},
		{"no NUL", []byte("Ver 6.60"), "Ver 6.60"},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DecodeVersion(tt.data); got != tt.want {
				t.Errorf("DecodeVersion = %q, want %q", got, tt.want)
			}
		})
	}
}

// f18Sizes is the CMD_GET_FREE_SIZES capture of an F18 (pyzk PR #111).
var f18Sizes = Sizes{
	Users: 3, Fingers: 3, Records: 58, OpLogs: 90, Admins: 2, Passwords: 2,
	FingerCapacity: 3000, UserCapacity: 5000, RecordCapacity: 100000,
	FingersAvailable: 2997, UsersAvailable: 4997, RecordsAvailable: 99942,
}

func TestDecodeSizes(t *testing.T) {
	raw := make([]byte, 92)
	for off, v := range map[int]int32{16: 3, 24: 3, 32: 58, 40: 90, 48: 2, 52: 2, 56: 3000, 60: 5000, 64: 100000, 68: 2997, 72: 4997, 76: 99942, 80: 4, 88: 400} {
		binary.LittleEndian.PutUint32(raw[off:], uint32(v))
	}
	withFaces := f18Sizes
	withFaces.Faces, withFaces.FaceCapacity = 4, 400
	tests := []struct {
		name    string
		data    []byte
		want    Sizes
		wantErr bool
	}{
		{"92 bytes", raw, withFaces, false},
		{"80 bytes (older firmware)", raw[:80], f18Sizes, false},
		{"79 bytes", raw[:79], Sizes{}, true},
		{"empty", nil, Sizes{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeSizes(tt.data)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("DecodeSizes = %+v, %v; want %+v (error %v)", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadReply) {
				t.Errorf("err = %v, want ErrBadReply", err)
			}
		})
	}
	t.Run("encode round trip", func(t *testing.T) {
		enc := EncodeSizes(withFaces)
		if len(enc) != SizesLen || string(enc) != string(raw) {
			t.Errorf("EncodeSizes = % x\nwant          % x", enc, raw)
		}
	})
}
