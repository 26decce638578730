package proto

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error that reports a message which does not
// satisfy the contract (a missing or malformed field). Such a message is never
// worth retrying: it belongs in the dead-letter stream.
var ErrInvalid = errors.New("invalid message")

// ErrUnsupportedVersion is returned when a message carries a major schema
// version newer than this decoder understands.
var ErrUnsupportedVersion = errors.New("unsupported schema version")

// FieldError names the field of a message that breaks the contract and why.
// It wraps ErrInvalid.
type FieldError struct {
	Message string // the message type, for example "raw_punch"
	Field   string // the JSON field name
	Problem string // what is wrong, phrased so that the producer knows what to fix
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: field %q %s", e.Message, e.Field, e.Problem)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func missing(msg, field string) error {
	return &FieldError{Message: msg, Field: field, Problem: "is required"}
}
