package zksim

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// start starts a device on a free local port and closes it after the test.
func start(t *testing.T, cfg Config) *Device {
	t.Helper()
	d, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// dial opens a client session with a 2 s call timeout (overridable by opts)
// and closes it after the test.
func dial(t *testing.T, d *Device, opts ...zk.Option) *zk.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := zk.Dial(ctx, d.Addr(), append([]zk.Option{zk.WithTimeout(2 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAttendance reads the log inside WithDisabled, as a collector does.
func readAttendance(ctx context.Context, c *zk.Client) ([]zk.AttendanceRecord, []*zk.RecordError, error) {
	var (
		recs []zk.AttendanceRecord
		bad  []*zk.RecordError
	)
	err := c.WithDisabled(ctx, func(ctx context.Context) (err error) {
		recs, bad, err = c.Attendance(ctx)
		return err
	})
	return recs, bad, err
}

// sameRecords fails the test unless got and want are equal field by field,
// Raw included.
func sameRecords(t *testing.T, got, want []zk.AttendanceRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d records, device holds %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("record %d:\n got  %+v\n want %+v", i, got[i], want[i])
		}
	}
}

// eventually polls cond for up to 3 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
