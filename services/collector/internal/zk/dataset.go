package zk

import (
	"encoding/binary"
	"fmt"
)

// Bulk reads (users, attendance) transfer a dataset: a u32 LE length followed
// by that many bytes of fixed-size records. The buffered read stages it with
// CMD_PREPARE_BUFFER and reads it in chunks with CMD_READ_BUFFER.

// Default chunk sizes of CMD_READ_BUFFER: 0xFFC0 on TCP (every known client),
// 16 KiB on UDP (pyzk, gozk).
const (
	ChunkSizeTCP = 0xFFC0
	ChunkSizeUDP = 16 * 1024
)

// EncodeDataset returns records with their u32 length prefix.
func EncodeDataset(records []byte) []byte {
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(records)), uint32(len(records)))
	return append(b, records...)
}

// DecodeDataset returns the record bytes of a dataset (aliasing b). Bytes
// beyond the declared length are ignored. It fails with ErrBadDataset when b
// is shorter than the prefix or than the length it declares.
func DecodeDataset(b []byte) ([]byte, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("decode dataset of %d bytes: no length prefix: %w", len(b), ErrBadDataset)
	}
	n := binary.LittleEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, fmt.Errorf("decode dataset: declares %d bytes, has %d: %w", n, len(b)-4, ErrBadDataset)
	}
	return b[4 : 4+n], nil
}

// EncodePrepareBuffer returns the 11-byte CMD_PREPARE_BUFFER data that stages
// the dataset of inner (CmdAttLogRRQ, CmdUserTempRRQ): 01, inner u16, fct u32,
// ext u32.
func EncodePrepareBuffer(inner Command, fct, ext uint32) []byte {
	b := []byte{1}
	b = binary.LittleEndian.AppendUint16(b, uint16(inner))
	b = binary.LittleEndian.AppendUint32(b, fct)
	return binary.LittleEndian.AppendUint32(b, ext)
}

// DecodePrepareBuffer decodes CMD_PREPARE_BUFFER data. It fails with
// ErrBadReply when data is shorter than 11 bytes.
func DecodePrepareBuffer(data []byte) (inner Command, fct, ext uint32, err error) {
	if len(data) < 11 {
		return 0, 0, 0, fmt.Errorf("decode prepare-buffer request of %d bytes: %w", len(data), ErrBadReply)
	}
	return Command(binary.LittleEndian.Uint16(data[1:])), binary.LittleEndian.Uint32(data[3:]), binary.LittleEndian.Uint32(data[7:]), nil
}

// EncodeBufferSize returns the 13-byte CMD_ACK_OK data that answers
// CMD_PREPARE_BUFFER for a dataset too large to send inline:
// 00, size u32, size u32, u32 0.
func EncodeBufferSize(size int) []byte {
	b := []byte{0}
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	return binary.LittleEndian.AppendUint32(b, 0)
}

// DecodeBufferSize returns the dataset size from the CMD_ACK_OK reply to
// CMD_PREPARE_BUFFER: the u32 at offset 1, where pyzk and node-zklib read it.
func DecodeBufferSize(data []byte) (int, error) {
	if len(data) < 5 {
		return 0, fmt.Errorf("decode buffer size from %d bytes: %w", len(data), ErrBadReply)
	}
	return int(binary.LittleEndian.Uint32(data[1:])), nil
}

// EncodeReadBuffer returns CMD_READ_BUFFER data: start u32, size u32.
func EncodeReadBuffer(start, size int) []byte {
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, 8), uint32(start))
	return binary.LittleEndian.AppendUint32(b, uint32(size))
}

// DecodeReadBuffer decodes CMD_READ_BUFFER data.
func DecodeReadBuffer(data []byte) (start, size int, err error) {
	if len(data) < 8 {
		return 0, 0, fmt.Errorf("decode read-buffer request of %d bytes: %w", len(data), ErrBadReply)
	}
	return int(binary.LittleEndian.Uint32(data)), int(binary.LittleEndian.Uint32(data[4:])), nil
}

// EncodePrepareData returns the 8-byte CMD_PREPARE_DATA data announcing size
// bytes: size u32, u32 0.
func EncodePrepareData(size int) []byte {
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, 8), uint32(size))
	return binary.LittleEndian.AppendUint32(b, 0)
}

// DecodePrepareData returns the size announced by CMD_PREPARE_DATA (its first
// u32).
func DecodePrepareData(data []byte) (int, error) {
	if len(data) < 4 {
		return 0, fmt.Errorf("decode prepare-data of %d bytes: %w", len(data), ErrBadReply)
	}
	return int(binary.LittleEndian.Uint32(data)), nil
}
