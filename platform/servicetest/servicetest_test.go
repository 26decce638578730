package servicetest

import (
	"testing"
	"time"
)

// TestWaitSteady returns only after the condition held on every look for
// the whole steady period: a look that fails starts the period again.
func TestWaitSteady(t *testing.T) {
	looks := 0
	start := time.Now()
	WaitSteady(t, "a steady condition", 10*time.Second, 300*time.Millisecond, func() (bool, string) {
		looks++
		// Holds on the first two looks, fails on the third, then holds.
		return looks != 3, ""
	})
	if looks < 3 {
		t.Fatalf("returned after %d looks, before the failing one", looks)
	}
	// The failing third look comes at least 100 ms in; the period starts
	// again after it.
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Errorf("returned after %v; the condition had held for less than 300 ms since it failed", took)
	}
}
