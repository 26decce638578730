package health

import (
	"testing"
	"time"
)

// BenchmarkObserve folds heartbeats into one device with a full history:
// the pure cost per heartbeat, without NATS.
func BenchmarkObserve(b *testing.B) {
	th := testThresholds()
	d := Device{Serial: "DEV1"}
	// A week of history with a state change every few hours.
	for i := range 2000 {
		share := 0.5
		if i%40 >= 20 {
			share = 0.95
		}
		d, _, _ = Observe(d, *ok(t0.Add(time.Duration(i)*5*time.Minute), used(share)), th)
	}
	start := t0.Add(2000 * 5 * time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		hb := ok(start.Add(time.Duration(i) * time.Second))
		d, _, _ = Observe(d, *hb, th)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "heartbeats/s")
}
