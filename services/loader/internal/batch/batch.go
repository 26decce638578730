// Package batch accumulates items into micro-batches that flush on a row
// count, a byte size or an age, whichever comes first. It is pure: the caller
// passes the clock.
package batch

import (
	"errors"
	"time"
)

// Policy bounds a batch.
type Policy struct {
	MaxRows  int
	MaxBytes int
	MaxAge   time.Duration
}

// Validate checks that every bound is positive.
func (p Policy) Validate() error {
	if p.MaxRows < 1 || p.MaxBytes < 1 || p.MaxAge <= 0 {
		return errors.New("batch rows, bytes and age must all be positive")
	}
	return nil
}

// Buffer holds the items of the batch being built. It is not safe for
// concurrent use.
type Buffer[T any] struct {
	policy Policy
	items  []T
	bytes  int
	first  time.Time
}

// New returns an empty buffer.
func New[T any](p Policy) *Buffer[T] {
	return &Buffer[T]{policy: p, items: make([]T, 0, p.MaxRows)}
}

// Add appends an item of the given size and reports whether the batch is
// now full (by rows or bytes) and should be flushed. A single item larger
// than MaxBytes makes a batch of its own.
func (b *Buffer[T]) Add(item T, size int, now time.Time) (full bool) {
	if len(b.items) == 0 {
		b.first = now
	}
	b.items = append(b.items, item)
	b.bytes += size
	return len(b.items) >= b.policy.MaxRows || b.bytes >= b.policy.MaxBytes
}

// Len is the number of items buffered.
func (b *Buffer[T]) Len() int { return len(b.items) }

// Bytes is the size of the items buffered.
func (b *Buffer[T]) Bytes() int { return b.bytes }

// Due reports whether the oldest item has waited MaxAge.
func (b *Buffer[T]) Due(now time.Time) bool {
	return len(b.items) > 0 && now.Sub(b.first) >= b.policy.MaxAge
}

// Deadline is when the current batch becomes due; zero when empty.
func (b *Buffer[T]) Deadline() time.Time {
	if len(b.items) == 0 {
		return time.Time{}
	}
	return b.first.Add(b.policy.MaxAge)
}

// Take returns the buffered items and empties the buffer. The returned slice
// is the caller's.
func (b *Buffer[T]) Take() []T {
	out := b.items
	b.items = make([]T, 0, b.policy.MaxRows)
	b.bytes = 0
	b.first = time.Time{}
	return out
}
