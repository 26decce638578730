package zk

import (
	"encoding/binary"
	"fmt"
)

// User record sizes.
const (
	UserSize28 = 28 // older/UDP firmware: numeric user ids, 8-byte names
	UserSize72 = 72 // TFT firmware: 24-byte text user ids and names
)

// Privilege levels (User.Privilege without the disabled bit).
const (
	PrivilegeUser     = 0
	PrivilegeEnroller = 2
	PrivilegeManager  = 6
	PrivilegeAdmin    = 14
)

// User is one entry of the device's user table.
type User struct {
	UID       int    // internal slot, 1–65535; attendance records of the 8-byte layout refer to it
	UserID    string // PIN; numeric in the 28-byte layout
	Name      string // as stored (ASCII or UTF-8, not checked), up to the first NUL
	Privilege int    // bit 0 = disabled, bits 1–3 = level (PrivilegeUser …)
	Password  string
	Card      uint32
	Group     int
}

// Disabled reports whether the user is disabled (privilege bit 0).
func (u User) Disabled() bool { return u.Privilege&1 != 0 }

// Level returns the privilege level without the disabled bit.
func (u User) Level() int { return u.Privilege &^ 1 }

// Validate checks that u has a printable non-empty user id of at most
// 24 bytes and a uid of 0–65535.
func (u User) Validate() error {
	if err := checkUserID(u.UserID); err != nil {
		return err
	}
	if u.UID < 0 || u.UID > 0xFFFF {
		return invalid(nil, "uid %d not in 0–65535", u.UID)
	}
	return nil
}

// UserRecordSize infers the user record size from the dataset length (without
// the u32 prefix) and the user count of CMD_GET_FREE_SIZES: 28, 72, or more
// than 72 (decoded as 72 plus padding). It fails with ErrLayout otherwise.
func UserRecordSize(total, count int) (int, error) {
	switch {
	case total == 0:
		return 0, nil
	case count <= 0:
		return 0, fmt.Errorf("infer user record size: %d bytes but count %d: %w", total, count, ErrLayout)
	}
	size := total / count
	if size != UserSize28 && size < UserSize72 {
		return 0, fmt.Errorf("infer user record size: %d bytes / %d users = %d: %w", total, count, size, ErrLayout)
	}
	return size, nil
}

// DecodeUser decodes and validates one user record; the layout is chosen by
// len(b): 28, or 72 and more. It fails with ErrLayout for other lengths.
func DecodeUser(b []byte) (User, error) {
	var u User
	switch {
	case len(b) == UserSize28:
		// <HB5s8sIxBhI>: uid, privilege, password, name, card, pad, group, timezone, user id
		u = User{
			UID:       int(binary.LittleEndian.Uint16(b[0:])),
			Privilege: int(b[2]),
			Password:  cString(b[3:8]),
			Name:      cString(b[8:16]),
			Card:      binary.LittleEndian.Uint32(b[16:]),
			Group:     int(b[21]),
			UserID:    numericUserID(binary.LittleEndian.Uint32(b[24:])),
		}
	case len(b) >= UserSize72:
		u = User{
			UID:       int(binary.LittleEndian.Uint16(b[0:])),
			Privilege: int(b[2]),
			Password:  cString(b[3:11]),
			Name:      cString(b[11:35]),
			Card:      binary.LittleEndian.Uint32(b[35:]),
			Group:     int(b[39]),
			UserID:    cString(b[48:72]),
		}
	default:
		return User{}, fmt.Errorf("decode user record of %d bytes: %w", len(b), ErrLayout)
	}
	if err := u.Validate(); err != nil {
		return User{}, err
	}
	return u, nil
}

// DecodeUsers decodes the records of a user dataset (the bytes after the u32
// length prefix). Like DecodeAttendance, bad records and trailing bytes come
// back as *RecordError values and the error result is non-nil (ErrLayout) only
// for an unknown size.
func DecodeUsers(records []byte, size int) ([]User, []*RecordError, error) {
	if size != UserSize28 && size < UserSize72 {
		return nil, nil, fmt.Errorf("decode users: record size %d: %w", size, ErrLayout)
	}
	n := len(records) / size
	users := make([]User, 0, n)
	var bad []*RecordError
	for i := range n {
		raw := records[i*size : (i+1)*size]
		u, err := DecodeUser(raw)
		if err != nil {
			bad = append(bad, recordError(i, raw, err))
			continue
		}
		users = append(users, u)
	}
	if rest := records[n*size:]; len(rest) > 0 {
		bad = append(bad, recordError(n, rest, fmt.Errorf("truncated record: %d of %d bytes", len(rest), size)))
	}
	return users, bad, nil
}

// AppendUser encodes u in the layout of the given size (28, or 72 and more,
// zero padded) and appends it to dst. In the 72-byte layout the time-zone
// bytes 40–47 are zero. It fails when a field does not fit: in the 28-byte
// layout a non-numeric user id, a password over 5 bytes or a name over 8.
func AppendUser(dst []byte, u User, size int) ([]byte, error) {
	if size != UserSize28 && size < UserSize72 {
		return dst, fmt.Errorf("encode user: record size %d: %w", size, ErrLayout)
	}
	if u.UID < 0 || u.UID > 0xFFFF || u.Privilege < 0 || u.Privilege > 0xFF || u.Group < 0 || u.Group > 0xFF {
		return dst, fmt.Errorf("encode user %q: uid %d, privilege %d or group %d out of range", u.UserID, u.UID, u.Privilege, u.Group)
	}
	start := len(dst)
	dst = append(dst, make([]byte, size)...)
	b := dst[start:]
	binary.LittleEndian.PutUint16(b[0:], uint16(u.UID))
	b[2] = byte(u.Privilege)
	var err error
	if size == UserSize28 {
		var id uint32
		if id, err = parseNumericUserID(u.UserID); err == nil {
			binary.LittleEndian.PutUint32(b[24:], id)
			if err = putCString(b[3:8], u.Password, "password"); err == nil {
				err = putCString(b[8:16], u.Name, "name")
			}
		}
		binary.LittleEndian.PutUint32(b[16:], u.Card)
		b[21] = byte(u.Group)
	} else {
		if err = putCString(b[3:11], u.Password, "password"); err == nil {
			if err = putCString(b[11:35], u.Name, "name"); err == nil {
				err = putCString(b[48:72], u.UserID, "user id")
			}
		}
		binary.LittleEndian.PutUint32(b[35:], u.Card)
		b[39] = byte(u.Group)
	}
	if err != nil {
		return dst[:start], fmt.Errorf("encode %d-byte user %q: %w", size, u.UserID, err)
	}
	return dst, nil
}
