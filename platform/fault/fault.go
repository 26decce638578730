// Package fault is punchflow's small vocabulary of error classes. Adapters
// classify an error once, where it happens; the disposition function turns
// the class into a JetStream action.
package fault

import (
	"errors"
	"fmt"

	"github.com/punchflow/punchflow/proto"
)

// Class says whether retrying can help.
type Class int

const (
	// Transient failures may succeed later: a database or NATS outage, a timeout.
	Transient Class = iota
	// Permanent failures never will: invalid input, a row the database refuses.
	Permanent
)

func (c Class) String() string {
	if c == Permanent {
		return "permanent"
	}
	return "transient"
}

// Error carries a class and, for permanent errors, a reason code from the
// proto.Reason* vocabulary.
type Error struct {
	Class  Class
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// NewPermanent marks err as permanent with a reason code.
func NewPermanent(reason string, err error) error {
	return &Error{Class: Permanent, Reason: reason, Err: err}
}

// Permanentf is NewPermanent with a formatted error.
func Permanentf(reason, format string, args ...any) error {
	return NewPermanent(reason, fmt.Errorf(format, args...))
}

// NewTransient marks err as transient.
func NewTransient(err error) error { return &Error{Class: Transient, Err: err} }

// Classify returns the class and reason of err. An error that wraps
// proto.ErrInvalid or proto.ErrUnsupportedVersion is permanent; an
// unclassified error is transient, so that it is retried until the delivery
// budget is spent and then dead-lettered with reason "retries_spent".
func Classify(err error) (Class, string) {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Class, fe.Reason
	}
	if errors.Is(err, proto.ErrUnsupportedVersion) || errors.Is(err, proto.ErrInvalid) {
		return Permanent, proto.ReasonInvalid
	}
	return Transient, ""
}
