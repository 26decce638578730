package zk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"
)

// Attendance record sizes. Records of more than 40 bytes (49 on some
// firmware) are decoded as a 40-byte record followed by padding.
const (
	AttendanceSize8  = 8  // old black-and-white firmware (ZEM500 class): uid, packed state/verify, time
	AttendanceSize16 = 16 // numeric user id, time, verify, state, work code
	AttendanceSize40 = 40 // TFT firmware: uid, 24-byte user id, verify, time, state, work code
)

// Punch states (AttendanceRecord.State). Devices use 0–5; many face
// terminals report StateNone.
const (
	StateCheckIn     = 0
	StateCheckOut    = 1
	StateBreakOut    = 2
	StateBreakIn     = 3
	StateOvertimeIn  = 4
	StateOvertimeOut = 5
	StateNone        = 255
)

// MaxVerifyMode is the largest verify mode accepted by validation. Known codes
// are small (0 password or any, 1 fingerprint, 2 and 4 card, 3 password,
// 15 face, 25 palm, varying by model); larger values are treated as garbage.
const MaxVerifyMode = 31

// AttendanceRecord is one punch from the device's attendance log.
type AttendanceRecord struct {
	// UID is the device's internal user slot. The 16-byte layout does not
	// carry it (0 until ResolveUsers fills it in).
	UID int
	// UserID is the PIN people type and HR systems map; a string, never
	// assume it is numeric. The 8-byte layout carries only UID, so UserID is
	// the decimal UID until ResolveUsers replaces it.
	UserID string
	// DeviceTime is the device's local wall clock, without zone; it is stored
	// in time.UTC but is not a UTC instant.
	DeviceTime time.Time
	// State is the punch state (StateCheckIn …); pyzk calls it "punch".
	State int
	// VerifyMode is how the person was identified; pyzk calls it "status".
	VerifyMode int
	// WorkCode is the work code where the layout has one, else 0.
	WorkCode int
	// Raw holds the record's bytes exactly as received; its length is the
	// record size of the dataset.
	Raw []byte
}

// Validate checks the fields of r against what a real punch can hold: a
// printable non-empty user id of at most 24 bytes, a time in 2000–2099, a
// state of 0–5 or 255, a verify mode of 0–MaxVerifyMode and a uid of 0–65535.
func (r AttendanceRecord) Validate() error {
	if err := checkUserID(r.UserID); err != nil {
		return err
	}
	if y := r.DeviceTime.Year(); y < MinYear || y > MaxYear {
		return invalid(ErrInvalidTime, "time %s outside %d–%d", r.DeviceTime.Format(time.DateTime), MinYear, MaxYear)
	}
	if (r.State < StateCheckIn || r.State > StateOvertimeOut) && r.State != StateNone {
		return invalid(nil, "state %d not in 0–5 or 255", r.State)
	}
	if r.VerifyMode < 0 || r.VerifyMode > MaxVerifyMode {
		return invalid(nil, "verify mode %d not in 0–%d", r.VerifyMode, MaxVerifyMode)
	}
	if r.UID < 0 || r.UID > 0xFFFF {
		return invalid(nil, "uid %d not in 0–65535", r.UID)
	}
	return nil
}

// validAttendanceSize reports whether size is a record size with a known
// layout: 8, 16, or 40 and more.
func validAttendanceSize(size int) bool {
	return size == AttendanceSize8 || size == AttendanceSize16 || size >= AttendanceSize40
}

// AttendanceRecordSize infers the record size of an attendance dataset from
// its length in bytes (without the u32 prefix) and the record count reported
// by CMD_GET_FREE_SIZES, as pyzk does: total / count, rounded down. Rounding
// down keeps the layout right when punches arrived after the count was read
// (the surplus records still decode) or when junk bytes trail the records
// (they come back as a *RecordError). It fails with ErrLayout when the size is
// not 8, 16 or at least 40, or when there are bytes but no count.
func AttendanceRecordSize(total, count int) (int, error) {
	switch {
	case total == 0:
		return 0, nil
	case count <= 0:
		return 0, fmt.Errorf("infer attendance record size: %d bytes but count %d: %w", total, count, ErrLayout)
	}
	size := total / count
	if !validAttendanceSize(size) {
		return 0, fmt.Errorf("infer attendance record size: %d bytes / %d records = %d: %w", total, count, size, ErrLayout)
	}
	return size, nil
}

// DecodeAttendanceRecord decodes and validates one record; the layout is
// chosen by len(b) (8, 16, or 40 and more, extra bytes being padding). Raw is
// a copy of b. It fails with ErrLayout for other lengths, and with an error
// naming the field for a record that does not validate (a packed time of 0,
// the value of a cleared slot, is rejected too).
func DecodeAttendanceRecord(b []byte) (AttendanceRecord, error) {
	return decodeAttendanceRecord(bytes.Clone(b))
}

// decodeAttendanceRecord is DecodeAttendanceRecord with Raw aliasing b.
func decodeAttendanceRecord(b []byte) (AttendanceRecord, error) {
	if !validAttendanceSize(len(b)) {
		return AttendanceRecord{}, fmt.Errorf("decode attendance record of %d bytes: %w", len(b), ErrLayout)
	}
	r := AttendanceRecord{Raw: b}
	var packed uint32
	switch {
	case len(b) == AttendanceSize8:
		r.UID = int(binary.LittleEndian.Uint16(b[0:]))
		r.VerifyMode = int(b[2] & 0x0F)
		r.State = int(b[2] >> 4)
		packed = binary.LittleEndian.Uint32(b[4:])
		if r.UID == 0 {
			return AttendanceRecord{}, invalid(nil, "uid 0 in an 8-byte record")
		}
		r.UserID = strconv.Itoa(r.UID)
	case len(b) == AttendanceSize16:
		r.UserID = numericUserID(binary.LittleEndian.Uint32(b[0:]))
		packed = binary.LittleEndian.Uint32(b[4:])
		r.VerifyMode = int(b[8])
		r.State = int(b[9])
		r.WorkCode = int(binary.LittleEndian.Uint32(b[12:]))
	default:
		r.UID = int(binary.LittleEndian.Uint16(b[0:]))
		r.UserID = cString(b[2:26])
		r.VerifyMode = int(b[26])
		packed = binary.LittleEndian.Uint32(b[27:])
		r.State = int(b[31])
		r.WorkCode = int(binary.LittleEndian.Uint32(b[32:]))
	}
	if packed == 0 {
		return AttendanceRecord{}, invalid(ErrInvalidTime, "zero timestamp (cleared slot)")
	}
	t, err := DecodeTime(packed)
	if err != nil {
		return AttendanceRecord{}, invalid(ErrInvalidTime, "time %#08x: not a valid date", packed)
	}
	r.DeviceTime = t
	if err := r.Validate(); err != nil {
		return AttendanceRecord{}, err
	}
	return r, nil
}

// DecodeAttendance decodes the records of an attendance dataset (the bytes
// after the u32 length prefix) of the given record size. Every record that
// fails to decode or validate is returned as a *RecordError with its index and
// raw bytes and does not affect the others; trailing bytes that do not make a
// whole record come back as one more *RecordError. The error result is
// non-nil (ErrLayout) only when size is not a known layout, and then nothing
// is decoded.
func DecodeAttendance(records []byte, size int) ([]AttendanceRecord, []*RecordError, error) {
	if !validAttendanceSize(size) {
		return nil, nil, fmt.Errorf("decode attendance: record size %d: %w", size, ErrLayout)
	}
	n := len(records) / size
	recs := make([]AttendanceRecord, 0, n)
	var bad []*RecordError
	own := bytes.Clone(records[:n*size]) // one copy backs every Raw
	for i := range n {
		raw := own[i*size : (i+1)*size : (i+1)*size]
		r, err := decodeAttendanceRecord(raw)
		if err != nil {
			bad = append(bad, recordError(i, raw, err))
			continue
		}
		recs = append(recs, r)
	}
	if rest := records[n*size:]; len(rest) > 0 {
		bad = append(bad, recordError(n, rest, fmt.Errorf("truncated record: %d of %d bytes", len(rest), size)))
	}
	return recs, bad, nil
}

// AppendAttendance encodes r in the layout of the given size and appends it
// to dst. Records of more than 40 bytes are a 40-byte record padded with
// zeros. In the 40-byte layout the reserved byte 36 is 0xFF, as observed on
// real devices. Fields the layout cannot hold make it fail: a non-zero work
// code or a state or verify mode above 15 in the 8-byte layout, a non-numeric
// user id in the 16-byte layout, a user id of more than 24 bytes in the
// 40-byte layout. It does not call Validate.
func AppendAttendance(dst []byte, r AttendanceRecord, size int) ([]byte, error) {
	if !validAttendanceSize(size) {
		return dst, fmt.Errorf("encode attendance: record size %d: %w", size, ErrLayout)
	}
	packed, err := EncodeTime(r.DeviceTime)
	if err != nil {
		return dst, fmt.Errorf("encode attendance for %q: %w", r.UserID, err)
	}
	if r.UID < 0 || r.UID > 0xFFFF {
		return dst, fmt.Errorf("encode attendance for %q: uid %d out of range", r.UserID, r.UID)
	}
	start := len(dst)
	dst = append(dst, make([]byte, size)...)
	b := dst[start:]
	fail := func(format string, args ...any) ([]byte, error) {
		return dst[:start], fmt.Errorf("encode %d-byte attendance for %q: %s", size, r.UserID, fmt.Sprintf(format, args...))
	}
	switch {
	case size == AttendanceSize8:
		if r.State < 0 || r.State > 15 || r.VerifyMode < 0 || r.VerifyMode > 15 {
			return fail("state %d / verify mode %d do not fit in 4 bits", r.State, r.VerifyMode)
		}
		if r.WorkCode != 0 {
			return fail("layout has no work code (got %d)", r.WorkCode)
		}
		binary.LittleEndian.PutUint16(b[0:], uint16(r.UID))
		b[2] = byte(r.State<<4 | r.VerifyMode)
		binary.LittleEndian.PutUint32(b[4:], packed)
	case size == AttendanceSize16:
		id, err := parseNumericUserID(r.UserID)
		if err != nil {
			return fail("%v", err)
		}
		if r.State < 0 || r.State > 0xFF || r.VerifyMode < 0 || r.VerifyMode > 0xFF {
			return fail("state %d / verify mode %d do not fit in a byte", r.State, r.VerifyMode)
		}
		binary.LittleEndian.PutUint32(b[0:], id)
		binary.LittleEndian.PutUint32(b[4:], packed)
		b[8] = byte(r.VerifyMode)
		b[9] = byte(r.State)
		binary.LittleEndian.PutUint32(b[12:], uint32(r.WorkCode))
	default:
		if r.State < 0 || r.State > 0xFF || r.VerifyMode < 0 || r.VerifyMode > 0xFF {
			return fail("state %d / verify mode %d do not fit in a byte", r.State, r.VerifyMode)
		}
		binary.LittleEndian.PutUint16(b[0:], uint16(r.UID))
		if err := putCString(b[2:26], r.UserID, "user id"); err != nil {
			return fail("%v", err)
		}
		b[26] = byte(r.VerifyMode)
		binary.LittleEndian.PutUint32(b[27:], packed)
		b[31] = byte(r.State)
		binary.LittleEndian.PutUint32(b[32:], uint32(r.WorkCode))
		b[36] = 0xFF
	}
	return dst, nil
}

// ResolveUsers completes records with what their layout lacks, using the
// device's user table: records decoded from 8-byte layouts (len(Raw) == 8)
// get the UserID of their UID, and records from 16-byte layouts
// (len(Raw) == 16) get the UID of their UserID. Records whose user is not in
// the table keep their values (pyzk's fallback: the decimal UID as user id).
func ResolveUsers(recs []AttendanceRecord, users []User) {
	byUID := make(map[int]string, len(users))
	byID := make(map[string]int, len(users))
	for _, u := range users {
		byUID[u.UID] = u.UserID
		byID[u.UserID] = u.UID
	}
	for i := range recs {
		r := &recs[i]
		switch len(r.Raw) {
		case AttendanceSize8:
			if id, ok := byUID[r.UID]; ok {
				r.UserID = id
			}
		case AttendanceSize16:
			if uid, ok := byID[r.UserID]; ok {
				r.UID = uid
			}
		}
	}
}
