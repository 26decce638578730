package zk

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Option keys read with CMD_OPTIONS_RRQ.
const (
	OptionSerialNumber = "~SerialNumber"
	OptionPlatform     = "~Platform"
	OptionDeviceName   = "~DeviceName"
	OptionMAC          = "MAC"
	OptionFPVersion    = "~ZKFPVersion"
	OptionPIN2Width    = "~PIN2Width"
	OptionOEMVendor    = "~OEMVendor"
)

// DeviceInfo identifies a device.
type DeviceInfo struct {
	SerialNumber string // option ~SerialNumber
	Platform     string // option ~Platform, e.g. ZEM760_TFT
	DeviceName   string // option ~DeviceName, e.g. F18
	MAC          string // option MAC
	Firmware     string // CMD_GET_VERSION, e.g. "Ver 6.60 Apr 26 2016"
}

// EncodeOptionRequest returns the CMD_OPTIONS_RRQ data for key: the key and a
// NUL.
func EncodeOptionRequest(key string) []byte { return append([]byte(key), 0) }

// DecodeOptionRequest returns the key of a CMD_OPTIONS_RRQ request: the data
// up to the first NUL.
func DecodeOptionRequest(data []byte) string { return cString(data) }

// EncodeOptionReply returns the data of a CMD_OPTIONS_RRQ reply:
// "key=value" and a NUL.
func EncodeOptionReply(key, value string) []byte {
	return append([]byte(key+"="+value), 0)
}

// DecodeOptionReply splits the data of a CMD_OPTIONS_RRQ reply,
// "key=value\x00", at its first '='; the value ends at the first NUL. It fails
// with ErrBadReply when there is no '='.
func DecodeOptionReply(data []byte) (key, value string, err error) {
	k, v, ok := bytes.Cut(data, []byte("="))
	if !ok {
		return "", "", fmt.Errorf("decode option reply %q: no '=': %w", data, ErrBadReply)
	}
	return string(k), cString(v), nil
}

// DecodeVersion returns the firmware string of a CMD_GET_VERSION reply, up to
// its NUL.
func DecodeVersion(data []byte) string { return cString(data) }

// Sizes is the CMD_GET_FREE_SIZES reply: counts, capacities and free space.
type Sizes struct {
	Users            int // offset 16
	Fingers          int // offset 24, fingerprint templates
	Records          int // offset 32, attendance records
	OpLogs           int // offset 40, operation-log records
	Admins           int // offset 48 (pyzk: "cards")
	Passwords        int // offset 52
	FingerCapacity   int // offset 56
	UserCapacity     int // offset 60
	RecordCapacity   int // offset 64
	FingersAvailable int // offset 68
	UsersAvailable   int // offset 72
	RecordsAvailable int // offset 76
	Faces            int // offset 80, only in the 92-byte form
	FaceCapacity     int // offset 88, only in the 92-byte form
}

// Sizes of the CMD_GET_FREE_SIZES reply: older firmware sends 80 bytes,
// newer 92 (23 × i32 LE).
const (
	SizesLen    = 92
	SizesLenOld = 80
)

// DecodeSizes decodes a CMD_GET_FREE_SIZES reply of at least 80 bytes; face
// counts are read only when 92 bytes are present. It fails with ErrBadReply
// when data is shorter than 80 bytes.
func DecodeSizes(data []byte) (Sizes, error) {
	if len(data) < SizesLenOld {
		return Sizes{}, fmt.Errorf("decode free sizes: %d bytes, want at least %d: %w", len(data), SizesLenOld, ErrBadReply)
	}
	at := func(off int) int { return int(int32(binary.LittleEndian.Uint32(data[off:]))) }
	s := Sizes{
		Users: at(16), Fingers: at(24), Records: at(32), OpLogs: at(40),
		Admins: at(48), Passwords: at(52),
		FingerCapacity: at(56), UserCapacity: at(60), RecordCapacity: at(64),
		FingersAvailable: at(68), UsersAvailable: at(72), RecordsAvailable: at(76),
	}
	if len(data) >= SizesLen {
		s.Faces, s.FaceCapacity = at(80), at(88)
	}
	return s, nil
}

// EncodeSizes returns the 92-byte CMD_GET_FREE_SIZES reply for s.
func EncodeSizes(s Sizes) []byte {
	b := make([]byte, SizesLen)
	put := func(off, v int) { binary.LittleEndian.PutUint32(b[off:], uint32(int32(v))) }
	put(16, s.Users)
	put(24, s.Fingers)
	put(32, s.Records)
	put(40, s.OpLogs)
	put(48, s.Admins)
	put(52, s.Passwords)
	put(56, s.FingerCapacity)
	put(60, s.UserCapacity)
	put(64, s.RecordCapacity)
	put(68, s.FingersAvailable)
	put(72, s.UsersAvailable)
	put(76, s.RecordsAvailable)
	put(80, s.Faces)
	put(88, s.FaceCapacity)
	return b
}
