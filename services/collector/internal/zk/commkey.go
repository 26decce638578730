package zk

import (
	"encoding/binary"
	"math/bits"
)

// DefaultTicks is the ticks value clients pass to MakeCommKey (pyzk, node-zklib
// and gozk all use 50).
const DefaultTicks = 50

// MakeCommKey derives the 4-byte CMD_AUTH payload from the device's numeric
// comm key and the session id the device assigned (ZK's commpro.c MakeKey, as
// ported by pyzk): reverse the key's 32 bits, add the session id, XOR the
// little-endian bytes with "ZKSO", swap the 16-bit halves, then XOR bytes 0, 1
// and 3 with ticks and replace byte 2 by ticks. The replaced byte is the low
// byte of key+session, so the payload does not depend on it.
func MakeCommKey(key uint32, session uint16, ticks byte) [4]byte {
	k := bits.Reverse32(key) + uint32(session)
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], k)
	b[0] ^= 'Z'
	b[1] ^= 'K'
	b[2] ^= 'S'
	b[3] ^= 'O'
	b[0], b[1], b[2], b[3] = b[2], b[3], b[0], b[1]
	return [4]byte{b[0] ^ ticks, b[1] ^ ticks, ticks, b[3] ^ ticks}
}

// CheckCommKey reports whether auth (a CMD_AUTH payload) was derived from key
// and session. The ticks byte is taken from auth itself, so any ticks value a
// client chose is accepted.
func CheckCommKey(auth []byte, key uint32, session uint16) bool {
	if len(auth) != 4 {
		return false
	}
	want := MakeCommKey(key, session, auth[2])
	return [4]byte(auth) == want
}
