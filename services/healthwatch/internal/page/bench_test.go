package page

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
)

// BenchmarkStatusPage renders the page for 1,000 devices, each with a week
// of history (a state change every six hours): the server-side cost of one
// refresh of a large fleet.
func BenchmarkStatusPage(b *testing.B) {
	var devs []health.Device
	for i := range 1000 {
		d := health.Device{Serial: fmt.Sprintf("D%05d", i), Site: fmt.Sprintf("site-%d", i%20), Team: "t", State: health.Online,
			KnownSince: before(8 * 24 * time.Hour), Heartbeats: 1, LastSeenAt: before(time.Minute)}
		for h := 8 * 24; h > 0; h -= 6 {
			s := health.Online
			if (h/6)%2 == 1 {
				s = health.Slow
			}
			d.History = append(d.History, sp(s, before(time.Duration(h)*time.Hour)))
		}
		d.State = d.History[len(d.History)-1].State
		devs = append(devs, d)
	}
	p := New(func(context.Context) ([]health.Device, error) { return devs, nil }, Options{Now: func() time.Time { return now }})
	var size int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		p.ServeHTML(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
		n, _ := io.Copy(io.Discard, rec.Body)
		size = int(n)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/page")
	b.ReportMetric(float64(size)/1e6, "MB/page")
}
