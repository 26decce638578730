package batch

import (
	"testing"
	"time"
)

func TestBuffer(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := Policy{MaxRows: 3, MaxBytes: 100, MaxAge: time.Second}
	type add struct {
		size     int
		at       time.Duration
		wantFull bool
	}
	tests := []struct {
		name      string
		adds      []add
		checkAt   time.Duration
		wantDue   bool
		wantLen   int
		wantBytes int
	}{
		{"full by rows", []add{{10, 0, false}, {10, 0, false}, {10, 0, true}}, 0, false, 3, 30},
		{"full by bytes", []add{{60, 0, false}, {40, 0, true}}, 0, false, 2, 100},
		{"oversized item is a batch of its own", []add{{500, 0, true}}, 0, false, 1, 500},
		{"not yet due", []add{{1, 0, false}, {1, 900 * time.Millisecond, false}}, 999 * time.Millisecond, false, 2, 2},
		{"due by the first item's age", []add{{1, 0, false}, {1, 900 * time.Millisecond, false}}, time.Second, true, 2, 2},
		{"empty is never due", nil, time.Hour, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New[int](p)
			for i, a := range tt.adds {
				if got := b.Add(i, a.size, t0.Add(a.at)); got != a.wantFull {
					t.Fatalf("add %d: full = %v, want %v", i, got, a.wantFull)
				}
			}
			if got := b.Due(t0.Add(tt.checkAt)); got != tt.wantDue {
				t.Errorf("Due = %v, want %v", got, tt.wantDue)
			}
			if b.Len() != tt.wantLen || b.Bytes() != tt.wantBytes {
				t.Errorf("Len, Bytes = %d, %d; want %d, %d", b.Len(), b.Bytes(), tt.wantLen, tt.wantBytes)
			}
			items := b.Take()
			if len(items) != tt.wantLen || b.Len() != 0 || b.Bytes() != 0 || !b.Deadline().IsZero() {
				t.Errorf("Take returned %d items and left len %d bytes %d", len(items), b.Len(), b.Bytes())
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := (Policy{MaxRows: 1, MaxBytes: 1, MaxAge: time.Millisecond}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Policy{MaxRows: 0, MaxBytes: 1, MaxAge: time.Millisecond}).Validate(); err == nil {
		t.Fatal("zero rows accepted")
	}
}
