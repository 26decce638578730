package zk

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of these where it
// applies, so callers can classify them with errors.Is.
var (
	// ErrShortPacket reports a packet shorter than its 8-byte header.
	ErrShortPacket = errors.New("zk: short packet")
	// ErrBadChecksum reports a packet whose checksum does not match its bytes.
	ErrBadChecksum = errors.New("zk: bad checksum")
	// ErrBadMagic reports a TCP frame that does not start with 50 50 82 7D.
	// The stream is out of step and the connection cannot be used further.
	ErrBadMagic = errors.New("zk: bad TCP frame magic")
	// ErrFrameTooLarge reports a TCP frame whose length exceeds MaxPacketSize.
	ErrFrameTooLarge = errors.New("zk: TCP frame too large")
	// ErrIncomplete reports that more bytes are needed to decode a frame.
	ErrIncomplete = errors.New("zk: incomplete frame")
	// ErrInvalidTime reports a time value outside what the device can encode
	// (years 2000–2099) or a date that does not exist (such as 30 February).
	ErrInvalidTime = errors.New("zk: invalid device time")
	// ErrLayout reports a dataset whose record size cannot be determined or
	// is not a known layout.
	ErrLayout = errors.New("zk: unknown record layout")
	// ErrBadDataset reports a bulk dataset whose length prefix does not match
	// the bytes received.
	ErrBadDataset = errors.New("zk: malformed dataset")
	// ErrBadRecord is matched by every *RecordError.
	ErrBadRecord = errors.New("zk: bad record")
	// ErrShortRead reports a bulk transfer that ended with fewer bytes than
	// the device announced. It is transient: the Client retries the chunk.
	ErrShortRead = errors.New("zk: device sent fewer bytes than announced")
	// ErrBadReply reports a reply whose data cannot be decoded.
	ErrBadReply = errors.New("zk: malformed reply")
	// ErrUnauthorized reports that the device requires a comm key, or rejected
	// the one given (CMD_ACK_UNAUTH). Retrying with the same key will not help.
	ErrUnauthorized = errors.New("zk: not authorised (comm key)")
	// ErrUnsupported reports a command the device does not know
	// (CMD_ACK_UNKNOWN, CMD_ACK_ERROR_CMD).
	ErrUnsupported = errors.New("zk: command not supported by device")
	// ErrRejected reports any other error reply (CMD_ACK_ERROR and friends).
	ErrRejected = errors.New("zk: device rejected command")
	// ErrTimeout reports that the device did not answer within the per-call
	// timeout. It is transient.
	ErrTimeout = errors.New("zk: device did not answer in time")
	// ErrConnection reports a broken transport (reset, closed by the device,
	// stream out of step). The Client is unusable afterwards; Dial again.
	ErrConnection = errors.New("zk: connection failed")
	// ErrClosed reports use of a Client after Close.
	ErrClosed = errors.New("zk: client closed")
)

// RecordError describes one record (attendance, user or event) that could not
// be decoded or failed validation. It carries the record's raw bytes so that
// the caller can dead-letter it. RecordError matches ErrBadRecord with
// errors.Is and unwraps to its cause when there is one (for example
// ErrInvalidTime).
type RecordError struct {
	Index  int    // position of the record in its dataset or packet
	Raw    []byte // the record's bytes exactly as received (a copy)
	Reason string // human-readable cause
	Err    error  // underlying sentinel or nil
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("zk: bad record %d (% x): %s", e.Index, e.Raw, e.Reason)
}

// Is reports whether target is ErrBadRecord.
func (e *RecordError) Is(target error) bool { return target == ErrBadRecord }

// Unwrap returns the underlying cause, if any.
func (e *RecordError) Unwrap() error { return e.Err }

func recordError(index int, raw []byte, err error) *RecordError {
	re := &RecordError{Index: index, Raw: append([]byte(nil), raw...), Reason: err.Error()}
	var fe *fieldError
	if errors.As(err, &fe) {
		re.Err = fe.err
	}
	return re
}

// fieldError is a validation failure of one field; it unwraps to a sentinel.
type fieldError struct {
	msg string
	err error
}

func (e *fieldError) Error() string { return e.msg }
func (e *fieldError) Unwrap() error { return e.err }

func invalid(err error, format string, args ...any) error {
	return &fieldError{msg: fmt.Sprintf(format, args...), err: err}
}

// ReplyError reports that the device answered a request with an error code.
// It matches ErrUnauthorized, ErrUnsupported or ErrRejected with errors.Is,
// depending on the reply code.
type ReplyError struct {
	Request Command // what was sent
	Reply   Command // what the device answered
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("zk: device answered %v to %v", e.Reply, e.Request)
}

// Is classifies the reply code.
func (e *ReplyError) Is(target error) bool {
	switch e.Reply {
	case CmdAckUnauth:
		return target == ErrUnauthorized
	case CmdAckUnknown, CmdAckErrorCmd:
		return target == ErrUnsupported
	default:
		return target == ErrRejected
	}
}
