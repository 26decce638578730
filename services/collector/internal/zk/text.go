package zk

import (
	"bytes"
	"fmt"
	"strconv"
)

// cString returns the bytes of b up to the first NUL, as a string.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// putCString copies s into the fixed-size field dst, NUL padded. It fails when
// s does not fit (a field may be filled completely, without a terminator, as
// devices do).
func putCString(dst []byte, s, field string) error {
	if len(s) > len(dst) {
		return fmt.Errorf("%s %q longer than %d bytes", field, s, len(dst))
	}
	if bytes.IndexByte([]byte(s), 0) >= 0 {
		return fmt.Errorf("%s %q contains NUL", field, s)
	}
	copy(dst, s)
	clear(dst[len(s):])
	return nil
}

// maxUserIDLen is the width of the user-id (PIN) field in the long layouts.
const maxUserIDLen = 24

// checkUserID validates a user id (PIN): non-empty, at most 24 bytes, visible
// ASCII only (0x21–0x7E).
func checkUserID(id string) error {
	if id == "" {
		return invalid(nil, "empty user id")
	}
	if len(id) > maxUserIDLen {
		return invalid(nil, "user id %q longer than %d bytes", id, maxUserIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7E {
			return invalid(nil, "user id %q has non-printable byte %#02x", id, c)
		}
	}
	return nil
}

// numericUserID formats a numeric user id as the layouts without text ids
// carry it; 0 means "no id" and yields "".
func numericUserID(v uint32) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(v), 10)
}

// parseNumericUserID parses id for a layout that stores user ids as u32.
func parseNumericUserID(id string) (uint32, error) {
	v, err := strconv.ParseUint(id, 10, 32)
	if err != nil || v == 0 || strconv.FormatUint(v, 10) != id {
		return 0, fmt.Errorf("user id %q is not a canonical number in 1–4294967295", id)
	}
	return uint32(v), nil
}
