package zksim

import (
	"bytes"
	"context"
	"errors"
	"net"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

func TestFaultConnect(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		opts   []zk.Option
		want   error
	}{
		{"refused tcp", Faults{RefuseConnect: true}, nil, zk.ErrConnection},
		{"refused udp", Faults{RefuseConnect: true}, []zk.Option{zk.WithUDP()}, zk.ErrRejected},
		{"ignored tcp", Faults{IgnoreConnect: true}, nil, zk.ErrTimeout},
		{"ignored udp", Faults{IgnoreConnect: true}, []zk.Option{zk.WithUDP(), zk.WithRetries(1)}, zk.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dev := start(t, Config{Faults: tt.faults})
			opts := append([]zk.Option{zk.WithTimeout(150 * time.Millisecond)}, tt.opts...)
			c, err := zk.Dial(testContext(t, 5*time.Second), dev.Addr(), opts...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Dial = %v, %v; want %v", c, err, tt.want)
			}
		})
	}
}

// TestFaultResetMidChunkTCP: the connection dies inside a chunk. The read
// fails with a connection error, the device is re-enabled over a fresh
// session, and a new client then reads everything.
func TestFaultResetMidChunkTCP(t *testing.T) {
	dev := start(t, Config{Records: 5000, Faults: Faults{ResetOnChunk: 2}})
	c := dial(t, dev)
	ctx := testContext(t, 10*time.Second)
	_, _, err := readAttendance(ctx, c)
	if !errors.Is(err, zk.ErrConnection) {
		t.Fatalf("Attendance = %v, want ErrConnection", err)
	}
	if !dev.Enabled() {
		t.Errorf("device left disabled after the reset")
	}
	if st := dev.Stats(); st.Resets != 1 || st.Sessions != 2 || st.Enables != 1 {
		t.Errorf("stats %+v: want 1 reset, 2 sessions (the second to re-enable), 1 enable", st)
	}
	if _, err := c.FreeSizes(ctx); !errors.Is(err, zk.ErrConnection) {
		t.Errorf("call on the broken client = %v, want ErrConnection", err)
	}
	c2 := dial(t, dev)
	recs, bad, err := readAttendance(ctx, c2)
	if err != nil || len(bad) != 0 {
		t.Fatalf("second read: %v, bad %v", err, bad)
	}
	sameRecords(t, recs, dev.Attendance())
}

// TestFaultChunkRetried: chunks that stall past the chunk timeout, or lose
// their data over UDP, are requested again and the read completes.
func TestFaultChunkRetried(t *testing.T) {
	tests := []struct {
		name       string
		faults     Faults
		opts       []zk.Option
		extraReads int
	}{
		{"stall tcp", Faults{StallOnChunk: 2, Stall: 400 * time.Millisecond}, nil, 1},
		{"stall udp", Faults{StallOnChunk: 3, Stall: 400 * time.Millisecond}, []zk.Option{zk.WithUDP()}, 1},
		{"reset udp (chunk lost)", Faults{ResetOnChunk: 2}, []zk.Option{zk.WithUDP()}, 1},
		{"slow device within the timeout", Faults{ChunkDelay: 20 * time.Millisecond}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dev := start(t, Config{Records: 5000, Faults: tt.faults})
			c := dial(t, dev, append([]zk.Option{zk.WithChunkTimeout(150 * time.Millisecond)}, tt.opts...)...)
			recs, bad, err := readAttendance(testContext(t, 10*time.Second), c)
			if err != nil || len(bad) != 0 {
				t.Fatalf("Attendance: %v, bad %v", err, bad)
			}
			sameRecords(t, recs, dev.Attendance())
			chunk := zk.ChunkSizeTCP
			if len(tt.opts) > 0 {
				chunk = zk.ChunkSizeUDP
			}
			total := 4 + 5000*40
			min := (total+chunk-1)/chunk + tt.extraReads
			if got := dev.Stats().ChunkReads; got < min {
				t.Errorf("%d chunk reads, want at least %d", got, min)
			}
			if !dev.Enabled() {
				t.Errorf("device left disabled")
			}
		})
	}
}

func TestFaultStallBeyondRetries(t *testing.T) {
	dev := start(t, Config{Records: 5000, Faults: Faults{ChunkDelay: 300 * time.Millisecond}})
	c := dial(t, dev, zk.WithChunkTimeout(50*time.Millisecond), zk.WithRetries(1))
	_, _, err := readAttendance(testContext(t, 10*time.Second), c)
	if !errors.Is(err, zk.ErrTimeout) {
		t.Fatalf("Attendance = %v, want ErrTimeout", err)
	}
	if !dev.Enabled() {
		t.Errorf("device left disabled")
	}
}

func TestFaultUDPDrops(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
	}{
		{"every 25th datagram", Faults{DropEvery: 25}},
		{"random 3%", Faults{DropRate: 0.03}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dev := start(t, Config{Seed: 5, Records: 5000, Faults: tt.faults})
			c := dial(t, dev, zk.WithUDP(), zk.WithTimeout(100*time.Millisecond), zk.WithChunkTimeout(200*time.Millisecond), zk.WithRetries(6))
			recs, bad, err := readAttendance(testContext(t, 20*time.Second), c)
			if err != nil || len(bad) != 0 {
				t.Fatalf("Attendance: %v, bad %v (stats %+v)", err, bad, dev.Stats())
			}
			sameRecords(t, recs, dev.Attendance())
			if dev.Stats().DroppedDatagrams == 0 {
				t.Errorf("no datagram was dropped; the test proves nothing")
			}
			eventually(t, "the device is enabled", dev.Enabled)
		})
	}
}

func TestFaultLatency(t *testing.T) {
	dev := start(t, Config{Records: 100, Faults: Faults{Latency: 60 * time.Millisecond}})
	t.Run("within the timeout", func(t *testing.T) {
		c := dial(t, dev, zk.WithTimeout(time.Second))
		recs, _, err := readAttendance(testContext(t, 5*time.Second), c)
		if err != nil || len(recs) != 100 {
			t.Errorf("Attendance = %d records, %v", len(recs), err)
		}
	})
	t.Run("beyond the timeout", func(t *testing.T) {
		_, err := zk.Dial(testContext(t, 5*time.Second), dev.Addr(), zk.WithTimeout(20*time.Millisecond))
		if !errors.Is(err, zk.ErrTimeout) {
			t.Errorf("Dial = %v, want ErrTimeout", err)
		}
	})
}

func TestFaultGarbageRecordSize(t *testing.T) {
	dev := start(t, Config{Records: 500, Faults: Faults{GarbageBytes: 7}})
	c := dial(t, dev)
	recs, bad, err := readAttendance(testContext(t, 5*time.Second), c)
	if err != nil {
		t.Fatalf("Attendance: %v", err)
	}
	sameRecords(t, recs, dev.Attendance())
	if len(bad) != 1 || bad[0].Index != 500 || !bytes.Equal(bad[0].Raw, bytes.Repeat([]byte{0xEE}, 7)) {
		t.Errorf("bad = %v, want the 7 junk bytes as record 500", bad)
	}
}

func TestFaultCorruptRecords(t *testing.T) {
	corrupt := []int{0, 17, 499}
	for _, size := range []int{8, 16, 40} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			dev := start(t, Config{Records: 500, RecordSize: size, UserSize: 28, Faults: Faults{CorruptRecords: corrupt}})
			c := dial(t, dev)
			recs, bad, err := readAttendance(testContext(t, 5*time.Second), c)
			if err != nil {
				t.Fatalf("Attendance: %v", err)
			}
			all := dev.Attendance()
			var want []zk.AttendanceRecord
			for i, r := range all {
				if !slices.Contains(corrupt, i) {
					want = append(want, r)
				}
			}
			sameRecords(t, recs, want)
			if len(bad) != len(corrupt) {
				t.Fatalf("bad = %v, want %d", bad, len(corrupt))
			}
			for i, b := range bad {
				if b.Index != corrupt[i] || !bytes.Equal(b.Raw, all[corrupt[i]].Raw) || !errors.Is(b, zk.ErrInvalidTime) {
					t.Errorf("bad[%d] = %v, want index %d with the device's raw bytes and ErrInvalidTime", i, b, corrupt[i])
				}
			}
		})
	}
}

func TestFaultClockSkew(t *testing.T) {
	skew := -95 * time.Minute
	dev := start(t, Config{Faults: Faults{ClockSkew: skew}})
	c := dial(t, dev)
	ctx := testContext(t, 5*time.Second)
	got, err := c.GetTime(ctx)
	host := wall(time.Now(), time.UTC)
	if d := got.Sub(host) - skew; err != nil || d < -2*time.Second || d > 2*time.Second {
		t.Fatalf("GetTime = %v, %v; want host time %v %v", got, err, host, skew)
	}
	if err := c.SetTime(ctx, wall(time.Now(), time.UTC)); err != nil {
		t.Fatal(err)
	}
	if d := dev.Now().Sub(wall(time.Now(), time.UTC)); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("skew after SetTime = %v, want about 0", d)
	}
}

func TestFaultDuplicatePunches(t *testing.T) {
	dev := start(t, Config{Records: 800, Faults: Faults{DuplicatePunches: 9}})
	c := dial(t, dev)
	recs, _, err := readAttendance(testContext(t, 5*time.Second), c)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, recs, dev.Attendance()) // duplicates are delivered, never dropped
	dups := 0
	for i := 1; i < len(recs); i++ {
		if reflect.DeepEqual(recs[i], recs[i-1]) {
			dups++
		}
	}
	if dups < 9 {
		t.Errorf("%d duplicates read, want at least 9", dups)
	}
}

func TestFaultFullLog(t *testing.T) {
	dev := start(t, Config{RecordCapacity: 600, Faults: Faults{FullLog: true}})
	c := dial(t, dev)
	ctx := testContext(t, 5*time.Second)
	s, err := c.FreeSizes(ctx)
	if err != nil || s.Records != 600 || s.RecordCapacity != 600 || s.RecordsAvailable != 0 {
		t.Errorf("FreeSizes = %+v, %v; want 600 of 600, none available", s, err)
	}
	if _, err := dev.Punch(dev.Users()[0].UserID, 0, 1); !errors.Is(err, ErrLogFull) {
		t.Errorf("Punch on a full log = %v, want ErrLogFull", err)
	}
	recs, _, err := readAttendance(ctx, c)
	if err != nil || len(recs) != 600 {
		t.Errorf("Attendance = %d records, %v; want 600", len(recs), err)
	}
}

// TestFaultLeftDisabled: a device left disabled by a dead client takes no
// punches; the next collector session enables it and the queued punches land.
func TestFaultLeftDisabled(t *testing.T) {
	dev := start(t, Config{Records: 10, Faults: Faults{StartDisabled: true}})
	if _, err := dev.Punch("1001", zk.StateCheckIn, 1); err != nil {
		t.Fatal(err)
	}
	if dev.Enabled() || dev.Queued() != 1 || len(dev.Attendance()) != 10 {
		t.Fatalf("enabled %v, queued %d, records %d; want disabled with the punch queued", dev.Enabled(), dev.Queued(), len(dev.Attendance()))
	}
	c := dial(t, dev)
	recs, _, err := readAttendance(testContext(t, 5*time.Second), c)
	if err != nil || len(recs) != 10 {
		t.Fatalf("Attendance = %d, %v", len(recs), err)
	}
	if !dev.Enabled() || dev.Queued() != 0 || len(dev.Attendance()) != 11 {
		t.Errorf("enabled %v, queued %d, records %d; want enabled with 11 records", dev.Enabled(), dev.Queued(), len(dev.Attendance()))
	}
}

// TestDeviceStaysDisabledAfterDeadClient models the field problem: a client
// that disables the device and vanishes leaves it disabled, unless the
// device is configured to re-enable on session end.
func TestDeviceStaysDisabledAfterDeadClient(t *testing.T) {
	for _, auto := range []bool{false, true} {
		t.Run(map[bool]string{false: "real device", true: "AutoEnable"}[auto], func(t *testing.T) {
			dev := start(t, Config{AutoEnable: auto})
			conn, err := net.Dial("tcp", dev.Addr())
			if err != nil {
				t.Fatal(err)
			}
			fr := zk.NewFrameReader(conn)
			send := func(cmd zk.Command, session, reply uint16) zk.Packet {
				t.Helper()
				conn.SetDeadline(time.Now().Add(2 * time.Second))
				if _, err := conn.Write(zk.EncodeTCPFrame(zk.EncodePacket(cmd, session, reply, nil))); err != nil {
					t.Fatal(err)
				}
				b, err := fr.Next()
				if err != nil {
					t.Fatal(err)
				}
				p, _ := zk.DecodePacket(b)
				return p
			}
			ack := send(zk.CmdConnect, 0, 0)
			send(zk.CmdDisableDevice, ack.SessionID, 1)
			conn.Close() // no CMD_ENABLEDEVICE, no CMD_EXIT
			eventually(t, "the session ends", func() bool { return dev.Sessions() == 0 })
			if dev.Enabled() != auto {
				t.Errorf("enabled = %v, want %v", dev.Enabled(), auto)
			}
		})
	}
}

func TestFaultOneSession(t *testing.T) {
	tests := []struct {
		name   string
		policy SessionPolicy
		opts   []zk.Option
		want   error
	}{
		{"refuse tcp", SessionsRefuse, nil, zk.ErrConnection},
		{"refuse udp", SessionsRefuse, []zk.Option{zk.WithUDP()}, zk.ErrRejected},
		{"block tcp", SessionsBlock, nil, zk.ErrTimeout},
		{"block udp", SessionsBlock, []zk.Option{zk.WithUDP(), zk.WithRetries(0)}, zk.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dev := start(t, Config{Faults: Faults{OneSession: tt.policy}})
			first := dial(t, dev, tt.opts...)
			ctx := testContext(t, 10*time.Second)
			opts := append([]zk.Option{zk.WithTimeout(150 * time.Millisecond)}, tt.opts...)
			if _, err := zk.Dial(ctx, dev.Addr(), opts...); !errors.Is(err, tt.want) {
				t.Fatalf("second Dial = %v, want %v", err, tt.want)
			}
			if tt.policy == SessionsBlock && tt.opts == nil {
				// A waiting TCP client gets its answer once the first session ends.
				got := make(chan error, 1)
				go func() {
					c, err := zk.Dial(ctx, dev.Addr(), zk.WithTimeout(3*time.Second))
					if err == nil {
						c.Close()
					}
					got <- err
				}()
				time.Sleep(100 * time.Millisecond)
				first.Close()
				if err := <-got; err != nil {
					t.Fatalf("queued Dial after the first session closed = %v", err)
				}
				return
			}
			first.Close()
			eventually(t, "the first session ends", func() bool { return dev.Sessions() == 0 })
			c, err := zk.Dial(ctx, dev.Addr(), opts...)
			if err != nil {
				t.Fatalf("Dial after the first session closed = %v", err)
			}
			c.Close()
		})
	}
}

// TestWithDisabledReenables checks the re-enable guarantee on every way out
// of the callback.
func TestWithDisabledReenables(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		faults  Faults
		run     func(t *testing.T, c *zk.Client) error
		wantErr error
	}{
		{
			name: "callback error",
			run: func(t *testing.T, c *zk.Client) error {
				return c.WithDisabled(t.Context(), func(context.Context) error { return errBoom })
			},
			wantErr: errBoom,
		},
		{
			name: "callback panic",
			run: func(t *testing.T, c *zk.Client) (err error) {
				defer func() {
					if r := recover(); r != errBoom {
						t.Errorf("recovered %v, want the original panic value", r)
					}
					err = errBoom
				}()
				return c.WithDisabled(t.Context(), func(context.Context) error { panic(errBoom) })
			},
			wantErr: errBoom,
		},
		{
			name:   "context cancelled during a stalled chunk",
			faults: Faults{StallOnChunk: 1, Stall: 5 * time.Second},
			run: func(t *testing.T, c *zk.Client) error {
				ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
				defer cancel()
				began := time.Now()
				_, _, err := readAttendance(ctx, c)
				if time.Since(began) > 2*time.Second {
					t.Errorf("cancellation took %v", time.Since(began))
				}
				return err
			},
			wantErr: context.DeadlineExceeded,
		},
		{
			name:   "client closed during the callback",
			faults: Faults{ChunkDelay: 100 * time.Millisecond},
			run: func(t *testing.T, c *zk.Client) error {
				time.AfterFunc(150*time.Millisecond, func() { c.Close() })
				_, _, err := readAttendance(t.Context(), c)
				return err
			},
			wantErr: zk.ErrClosed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dev := start(t, Config{Records: 5000, Faults: tt.faults})
			c := dial(t, dev, zk.WithTimeout(500*time.Millisecond))
			err := tt.run(t, c)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			// A stalled session cannot carry the enable's reply, so the client
			// may enable a second time over a fresh session.
			if st := dev.Stats(); !dev.Enabled() || st.Disables != 1 || st.Enables < 1 {
				t.Errorf("enabled %v, stats %+v: want one disable and an enable", dev.Enabled(), st)
			}
		})
	}
}
