package zk

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Event is one realtime event pushed by the device after CMD_REG_EVENT. For
// EventAttLog events (a punch) the user, state, verify mode and time are
// decoded; for other flags only Flag and Raw are set.
type Event struct {
	Flag       uint16    // event flag, from the packet's session field
	UserID     string    // PIN; numeric in the 10-, 12- and 14-byte layouts
	State      int       // punch state (StateCheckIn …)
	VerifyMode int       // verify mode
	Time       time.Time // device wall clock, zone-less, in time.UTC
	Raw        []byte    // the event's bytes exactly as received
}

// Record returns the punch of an EventAttLog event as an attendance record.
// Events do not carry the uid or a work code, so those are 0.
func (e Event) Record() AttendanceRecord {
	return AttendanceRecord{UserID: e.UserID, DeviceTime: e.Time, State: e.State, VerifyMode: e.VerifyMode, Raw: e.Raw}
}

// EventSizes lists the EventAttLog data lengths devices send, which pyzk
// tells apart by exact length: 10 (u16 user id), 12 (u32 user id), 14 (u16
// user id + 4 extra), 32 (24-byte user id), 36 and 37 (32 + 4 or 5 extra) and
// 52 (32 + 20 extra).
var EventSizes = []int{10, 12, 14, 32, 36, 37, 52}

// eventSize returns the size of the event at the start of data of length n,
// or 0 when n matches no layout.
func eventSize(n int) int {
	switch {
	case n == 10, n == 12, n == 14, n == 32, n == 36, n == 37:
		return n
	case n >= 52:
		return 52
	}
	return 0
}

// DecodeEvents decodes the data of an event packet whose session field
// carried flag. For EventAttLog it consumes events as pyzk does, the layout of
// each chosen by the length of the remaining data (see EventSizes; 52 or more
// takes 52 and continues with the rest); fewer than 10 bytes left after an
// event are padding. An event that does not validate becomes a *RecordError
// and the others are still returned. When the (remaining) length matches no
// layout, decoding stops with an error wrapping ErrLayout — where pyzk would
// loop forever.
func DecodeEvents(flag uint16, data []byte) ([]Event, []*RecordError, error) {
	if flag != EventAttLog {
		return []Event{{Flag: flag, Raw: append([]byte(nil), data...)}}, nil, nil
	}
	var (
		evs []Event
		bad []*RecordError
	)
	for i := 0; len(data) >= 10 || i == 0; i++ {
		n := eventSize(len(data))
		if n == 0 {
			return evs, bad, fmt.Errorf("decode event %d: %d bytes: %w", i, len(data), ErrLayout)
		}
		ev, err := DecodeEvent(data[:n])
		if err != nil {
			bad = append(bad, recordError(i, data[:n], err))
		} else {
			evs = append(evs, ev)
		}
		data = data[n:]
	}
	return evs, bad, nil
}

// DecodeEvent decodes and validates one EventAttLog event of exactly one of
// the EventSizes lengths.
func DecodeEvent(b []byte) (Event, error) {
	ev := Event{Flag: EventAttLog, Raw: append([]byte(nil), b...)}
	var tb []byte
	switch len(b) {
	case 10, 14:
		ev.UserID = numericUserID(uint32(binary.LittleEndian.Uint16(b[0:])))
		ev.VerifyMode, ev.State, tb = int(b[2]), int(b[3]), b[4:10]
	case 12:
		ev.UserID = numericUserID(binary.LittleEndian.Uint32(b[0:]))
		ev.VerifyMode, ev.State, tb = int(b[4]), int(b[5]), b[6:12]
	case 32, 36, 37, 52:
		ev.UserID = cString(b[0:24])
		ev.VerifyMode, ev.State, tb = int(b[24]), int(b[25]), b[26:32]
	default:
		return Event{}, fmt.Errorf("decode event of %d bytes: %w", len(b), ErrLayout)
	}
	t, err := DecodeEventTime(tb)
	if err != nil {
		return Event{}, invalid(ErrInvalidTime, "time % x: not a valid date", tb)
	}
	ev.Time = t
	if err := ev.Record().Validate(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// AppendEvent encodes an EventAttLog event in the layout of the given size
// (one of EventSizes; extra bytes are zero) and appends it to dst. The 10- and
// 14-byte layouts need a numeric user id of at most 65535, the 12-byte layout
// one of at most 4294967295.
func AppendEvent(dst []byte, e Event, size int) ([]byte, error) {
	if eventSize(size) != size || size > 52 {
		return dst, fmt.Errorf("encode event: size %d: %w", size, ErrLayout)
	}
	tb, err := EncodeEventTime(e.Time)
	if err != nil {
		return dst, fmt.Errorf("encode event for %q: %w", e.UserID, err)
	}
	if e.State < 0 || e.State > 0xFF || e.VerifyMode < 0 || e.VerifyMode > 0xFF {
		return dst, fmt.Errorf("encode event for %q: state %d / verify mode %d do not fit in a byte", e.UserID, e.State, e.VerifyMode)
	}
	start := len(dst)
	dst = append(dst, make([]byte, size)...)
	b := dst[start:]
	switch size {
	case 10, 14, 12:
		id, err := parseNumericUserID(e.UserID)
		if err == nil && size != 12 && id > 0xFFFF {
			err = fmt.Errorf("user id %q does not fit in 16 bits", e.UserID)
		}
		if err != nil {
			return dst[:start], fmt.Errorf("encode %d-byte event: %w", size, err)
		}
		if size == 12 {
			binary.LittleEndian.PutUint32(b[0:], id)
			b[4], b[5] = byte(e.VerifyMode), byte(e.State)
			copy(b[6:12], tb[:])
		} else {
			binary.LittleEndian.PutUint16(b[0:], uint16(id))
			b[2], b[3] = byte(e.VerifyMode), byte(e.State)
			copy(b[4:10], tb[:])
		}
	default:
		if err := putCString(b[0:24], e.UserID, "user id"); err != nil {
			return dst[:start], fmt.Errorf("encode %d-byte event: %w", size, err)
		}
		b[24], b[25] = byte(e.VerifyMode), byte(e.State)
		copy(b[26:32], tb[:])
	}
	return dst, nil
}
