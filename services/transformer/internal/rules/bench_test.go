package rules

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/transformer/internal/roster"
)

// benchPunches returns n realistic punches of a thousand people at three
// sites over a month: ins and outs around their shift times, some breaks,
// some face terminals with state 255, a few unknown users and skewed
// clocks, and the roster that knows them.
func benchPunches(tb testing.TB, n int) ([]proto.RawPunch, *roster.Roster) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	sites := []string{"hq", "plant", "dubai"}
	var entries []roster.Entry
	for u := range 1000 {
		e := roster.Entry{Site: sites[u%3], UserID: fmt.Sprintf("%05d", u), PersonID: fmt.Sprintf("emp-%d", u), Department: "office"}
		if u%5 == 0 {
			e.Department = "warehouse"
		}
		entries = append(entries, e)
	}
	ros, err := roster.New(entries)
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	out := make([]proto.RawPunch, n)
	for i := range out {
		u := rng.IntN(1010) // 1% unknown users
		day := start.AddDate(0, 0, rng.IntN(28))
		at := day.Add(8*time.Hour + time.Duration(rng.IntN(11*3600))*time.Second)
		state := rng.IntN(4)
		serial := fmt.Sprintf("D%d", u%8)
		if u%7 == 0 {
			serial, state = "SF-"+serial, 255
		}
		p := proto.RawPunch{
			Source: "zk:" + serial, SourceKind: "zk_tcp", Site: sites[u%3], DeviceSerial: serial,
			UserID: fmt.Sprintf("%05d", u), DeviceTime: proto.FormatLocalTime(at), State: state, VerifyMode: 15,
			CollectedAt: at.Add(48 * time.Hour), RunID: "run",
		}
		if i%50 == 0 {
			off := int64(rng.IntN(600_000) - 300_000)
			p.ClockOffsetMS = &off
		}
		out[i] = proto.NewRawPunch(p)
	}
	return out, ros
}

// BenchmarkApply is the pure rules evaluation per punch on one core, with
// the payroll rules of the tests (three sites, shifts with breaks and
// rounding, holidays, models) and a roster of a thousand people. Goal: at
// least 1,000,000 punches/s.
func BenchmarkApply(b *testing.B) {
	r, err := Parse([]byte(payrollRules))
	if err != nil {
		b.Fatal(err)
	}
	punches, ros := benchPunches(b, 1<<14)
	lin := proto.Lineage{RawSubject: "raw.punch.hq.D1", RawStream: "RAW", RawSequence: 1}
	b.ReportAllocs()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		if _, err := r.Apply(punches[i&(len(punches)-1)], ros, lin); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "punches/s")
	// On a shared machine the wall clock counts time the process waited for
	// a CPU; punches per CPU-second of this process (GC included) does not.
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "punches/cpu-s")
	}
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
