package zksim

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

func transports() []struct {
	name string
	opts []zk.Option
} {
	return []struct {
		name string
		opts []zk.Option
	}{{"tcp", nil}, {"udp", []zk.Option{zk.WithUDP()}}}
}

// TestClientReadsWhatTheDeviceHolds runs the client over both transports,
// with and without a comm key, against every layout, with logs small enough
// to come inline and large enough to need chunks.
func TestClientReadsWhatTheDeviceHolds(t *testing.T) {
	layouts := []struct{ record, user int }{{8, 28}, {16, 28}, {40, 72}, {49, 72}}
	for _, tr := range transports() {
		for _, key := range []uint32{0, 271828} {
			for _, l := range layouts {
				for _, n := range []int{10, 3000} {
					name := fmt.Sprintf("%s/key=%d/att%d-user%d/records=%d", tr.name, key, l.record, l.user, n)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						dev := start(t, Config{Seed: int64(n + l.record), Users: 12, Records: n, RecordSize: l.record, UserSize: l.user, CommKey: key})
						opts := tr.opts
						if key != 0 {
							opts = append(opts, zk.WithCommKey(key))
						}
						c := dial(t, dev, opts...)
						ctx := testContext(t, 10*time.Second)

						info, err := c.Info(ctx)
						cfg := dev.Config()
						want := zk.DeviceInfo{SerialNumber: cfg.SerialNumber, Platform: cfg.Platform, DeviceName: cfg.DeviceName, MAC: cfg.MAC, Firmware: cfg.Firmware}
						if err != nil || info != want {
							t.Errorf("Info = %+v, %v; want %+v", info, err, want)
						}
						sizes, err := c.FreeSizes(ctx)
						if err != nil || sizes.Records != n || sizes.Users != 12 || sizes.RecordsAvailable != cfg.RecordCapacity-n {
							t.Errorf("FreeSizes = %+v, %v; want %d records, 12 users", sizes, err, n)
						}
						users, badUsers, err := c.Users(ctx)
						if err != nil || len(badUsers) != 0 || !reflect.DeepEqual(users, dev.Users()) {
							t.Errorf("Users = %+v, %v, %v;\nwant %+v", users, badUsers, err, dev.Users())
						}
						recs, bad, err := readAttendance(ctx, c)
						if err != nil || len(bad) != 0 {
							t.Fatalf("Attendance: %v, bad %v", err, bad)
						}
						sameRecords(t, recs, dev.Attendance())
						if !dev.Enabled() {
							t.Errorf("device left disabled")
						}
						st := dev.Stats()
						if datasetLen := 4 + n*l.record; datasetLen <= cfg.InlineMax {
							if st.ChunkReads != 0 {
								t.Errorf("a %d-byte log was read in %d chunks, want inline", datasetLen, st.ChunkReads)
							}
						} else if st.ChunkReads == 0 || st.Frees == 0 {
							t.Errorf("a %d-byte log was read with %d chunks and %d frees", datasetLen, st.ChunkReads, st.Frees)
						}
						if err := c.Close(); err != nil {
							t.Errorf("Close: %v", err)
						}
						eventually(t, "the session ends on the device", func() bool { return dev.Sessions() == 0 })
					})
				}
			}
		}
	}
}

func TestClientLargeLog(t *testing.T) {
	const n = 50_000
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			dev := start(t, Config{Seed: 11, Users: 80, Records: n})
			c := dial(t, dev, tr.opts...)
			recs, bad, err := readAttendance(testContext(t, 20*time.Second), c)
			if err != nil || len(bad) != 0 {
				t.Fatalf("Attendance: %v, bad %d", err, len(bad))
			}
			sameRecords(t, recs, dev.Attendance())
			chunk := zk.ChunkSizeTCP
			if tr.name == "udp" {
				chunk = zk.ChunkSizeUDP
			}
			total := 4 + n*zk.AttendanceSize40
			if want, got := (total+chunk-1)/chunk, dev.Stats().ChunkReads; got != want {
				t.Errorf("%d chunk reads, want %d", got, want)
			}
		})
	}
}

func TestClientLegacyRead(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		opts []zk.Option
	}{
		{"firmware without buffered read, tcp", Config{NoBufferedRead: true, Records: 300}, nil},
		{"firmware without buffered read, udp", Config{NoBufferedRead: true, Records: 300}, []zk.Option{zk.WithUDP()}},
		{"firmware without buffered read, udp, 8-byte", Config{NoBufferedRead: true, Records: 300, RecordSize: 8, UserSize: 28}, []zk.Option{zk.WithUDP()}},
		{"forced by option", Config{Records: 300}, []zk.Option{zk.WithLegacyRead()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := start(t, tt.cfg)
			c := dial(t, dev, tt.opts...)
			recs, bad, err := readAttendance(testContext(t, 5*time.Second), c)
			if err != nil || len(bad) != 0 {
				t.Fatalf("Attendance: %v, bad %v", err, bad)
			}
			sameRecords(t, recs, dev.Attendance())
			if st := dev.Stats(); st.LegacyReads == 0 || st.ChunkReads != 0 {
				t.Errorf("stats %+v: want legacy reads and no chunks", st)
			}
		})
	}
}

func TestClientEmptyLog(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			dev := start(t, Config{Records: 0})
			c := dial(t, dev, tr.opts...)
			recs, bad, err := readAttendance(testContext(t, 5*time.Second), c)
			if err != nil || len(recs) != 0 || len(bad) != 0 {
				t.Errorf("Attendance = %d records, %v, %v; want none", len(recs), bad, err)
			}
		})
	}
}

func TestClientCommKeyRejected(t *testing.T) {
	for _, tr := range transports() {
		tests := []struct {
			name string
			opts []zk.Option
		}{
			{"no key", nil},
			{"wrong key", []zk.Option{zk.WithCommKey(1)}},
		}
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				dev := start(t, Config{CommKey: 4242})
				_, err := zk.Dial(testContext(t, 5*time.Second), dev.Addr(), append(tt.opts, tr.opts...)...)
				if !errors.Is(err, zk.ErrUnauthorized) {
					t.Errorf("Dial = %v, want ErrUnauthorized", err)
				}
			})
		}
	}
}

func TestClientClockAndClear(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			dev := start(t, Config{Records: 100, Location: time.FixedZone("UTC+7", 7*3600)})
			c := dial(t, dev, tr.opts...)
			ctx := testContext(t, 5*time.Second)

			got, err := c.GetTime(ctx)
			if d := got.Sub(dev.Now()); err != nil || d < -2*time.Second || d > 2*time.Second {
				t.Errorf("GetTime = %v, %v; device clock %v", got, err, dev.Now())
			}
			target := time.Date(2031, 7, 8, 9, 10, 11, 0, time.UTC)
			if err := c.SetTime(ctx, target); err != nil {
				t.Fatalf("SetTime: %v", err)
			}
			if d := dev.Now().Sub(target); d < 0 || d > 2*time.Second {
				t.Errorf("device clock %v after SetTime(%v)", dev.Now(), target)
			}
			if err := c.SetTime(ctx, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, zk.ErrInvalidTime) {
				t.Errorf("SetTime(2100) = %v, want ErrInvalidTime", err)
			}

			err = c.WithDisabled(ctx, func(ctx context.Context) error { return c.ClearAttendance(ctx) })
			if err != nil || len(dev.Attendance()) != 0 {
				t.Fatalf("ClearAttendance = %v, device holds %d records", err, len(dev.Attendance()))
			}
			if s, err := c.FreeSizes(ctx); err != nil || s.Records != 0 {
				t.Errorf("FreeSizes after clear = %+v, %v", s, err)
			}
		})
	}
}

func TestClientOptionUnknown(t *testing.T) {
	dev := start(t, Config{})
	c := dial(t, dev)
	ctx := testContext(t, 5*time.Second)
	if _, err := c.Option(ctx, "NoSuchOption"); !errors.Is(err, zk.ErrRejected) {
		t.Errorf("Option(unknown) = %v, want ErrRejected", err)
	}
	if v, err := c.Option(ctx, zk.OptionSerialNumber); err != nil || v != dev.Config().SerialNumber {
		t.Errorf("Option(serial) = %q, %v", v, err)
	}
}

func TestClientClose(t *testing.T) {
	dev := start(t, Config{})
	c := dial(t, dev)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if _, err := c.FreeSizes(testContext(t, time.Second)); !errors.Is(err, zk.ErrClosed) {
		t.Errorf("FreeSizes after Close = %v, want ErrClosed", err)
	}
	eventually(t, "the device ends the session", func() bool { return dev.Sessions() == 0 })
}

func TestClientCloseReenables(t *testing.T) {
	dev := start(t, Config{})
	c := dial(t, dev)
	if err := c.Disable(testContext(t, time.Second)); err != nil || dev.Enabled() {
		t.Fatalf("Disable = %v, enabled %v", err, dev.Enabled())
	}
	c.Close()
	if !dev.Enabled() {
		t.Errorf("Close left the device disabled")
	}
}

func TestClientConcurrentCalls(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			dev := start(t, Config{Records: 2000})
			c := dial(t, dev, tr.opts...)
			ctx := testContext(t, 10*time.Second)
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for i := range 8 {
				wg.Go(func() {
					if i%2 == 0 {
						recs, _, err := c.Attendance(ctx)
						if err == nil && len(recs) != 2000 {
							err = fmt.Errorf("%d records", len(recs))
						}
						errs <- err
						return
					}
					_, err := c.FreeSizes(ctx)
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
}
