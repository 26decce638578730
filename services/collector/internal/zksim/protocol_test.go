package zksim

import (
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// rawConn speaks the protocol byte by byte, as third-party clients do.
type rawConn struct {
	t     *testing.T
	conn  net.Conn
	fr    *zk.FrameReader
	udp   bool
	sess  uint16
	reply uint16
}

func rawDial(t *testing.T, d *Device, network string) *rawConn {
	t.Helper()
	conn, err := net.Dial(network, d.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawConn{t: t, conn: conn, fr: zk.NewFrameReader(conn), udp: network == "udp"}
}

func (r *rawConn) writeRaw(b []byte) {
	r.t.Helper()
	if _, err := r.conn.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) send(cmd zk.Command, data []byte) uint16 {
	r.t.Helper()
	id := r.reply
	pkt := zk.EncodePacket(cmd, r.sess, id, data)
	if !r.udp {
		pkt = zk.EncodeTCPFrame(pkt)
	}
	r.writeRaw(pkt)
	r.reply = zk.NextReplyID(r.reply)
	return id
}

// next returns the next packet and its size on the wire, or fails.
func (r *rawConn) next(wait time.Duration) (zk.Packet, int, error) {
	r.conn.SetReadDeadline(time.Now().Add(wait))
	var b []byte
	var err error
	if r.udp {
		buf := make([]byte, 2048)
		var n int
		n, err = r.conn.Read(buf)
		b = buf[:n]
	} else {
		b, err = r.fr.Next()
	}
	if err != nil {
		return zk.Packet{}, 0, err
	}
	p, err := zk.DecodePacket(bytes.Clone(b))
	return p, len(b), err
}

func (r *rawConn) expect(cmd zk.Command, reply uint16) zk.Packet {
	r.t.Helper()
	p, _, err := r.next(2 * time.Second)
	if err != nil {
		r.t.Fatalf("waiting for %v: %v", cmd, err)
	}
	if p.Command != cmd || p.ReplyID != reply {
		r.t.Fatalf("got %v reply %d, want %v reply %d", p.Command, p.ReplyID, cmd, reply)
	}
	return p
}

func (r *rawConn) silent(wait time.Duration) {
	r.t.Helper()
	if p, _, err := r.next(wait); !errors.Is(err, os.ErrDeadlineExceeded) {
		r.t.Fatalf("expected silence, got %+v, %v", p, err)
	}
}

func (r *rawConn) connect() {
	r.t.Helper()
	id := r.send(zk.CmdConnect, nil)
	r.sess = r.expect(zk.CmdAckOK, id).SessionID
}

// TestProtocolWorkedExample replays the first exchange of the pyzk capture
// in the protocol notes: the device's answer must match byte for byte.
func TestProtocolWorkedExample(t *testing.T) {
	dev := start(t, Config{})
	r := rawDial(t, dev, "tcp")
	r.writeRaw([]byte{0x50, 0x50, 0x82, 0x7d, 0x08, 0, 0, 0, 0xe8, 0x03, 0x17, 0xfc, 0, 0, 0, 0})
	r.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	got := make([]byte, 16)
	if _, err := r.conn.Read(got); err != nil {
		t.Fatal(err)
	}
	want := []byte{0x50, 0x50, 0x82, 0x7d, 0x08, 0, 0, 0, 0xd0, 0x07, 0xfa, 0xe5, 0x35, 0x12, 0, 0}
	if !bytes.Equal(got, want) {
		t.Errorf("device answered % x, want % x", got, want)
	}
}

// TestProtocolCompatibility checks the rules of §1.16 of the protocol notes
// that third-party clients depend on, over both transports.
func TestProtocolCompatibility(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		t.Run(network, func(t *testing.T) {
			dev := start(t, Config{Records: 10})
			r := rawDial(t, dev, network)

			t.Run("commands before connect are refused", func(t *testing.T) {
				r.expect(zk.CmdAckErrorInit, r.send(zk.CmdGetFreeSizes, nil))
			})
			r.connect()
			t.Run("8-byte-read commands reply without data", func(t *testing.T) {
				for _, cmd := range []zk.Command{zk.CmdDisableDevice, zk.CmdEnableDevice, zk.CmdRefreshData, zk.CmdCancelCapture, zk.CmdStartVerify} {
					if p := r.expect(zk.CmdAckOK, r.send(cmd, nil)); len(p.Data) != 0 {
						t.Errorf("%v reply carries %d bytes", cmd, len(p.Data))
					}
				}
				if p := r.expect(zk.CmdAckOK, r.send(zk.CmdOptionsWRQ, []byte("SDKBuild=1"))); len(p.Data) != 0 {
					t.Errorf("options write reply carries %d bytes", len(p.Data))
				}
			})
			t.Run("pin width is exactly one byte", func(t *testing.T) {
				if p := r.expect(zk.CmdAckOK, r.send(zk.CmdGetPinWidth, []byte(" P"))); len(p.Data) != 1 {
					t.Errorf("pin width reply = % x, want 1 byte", p.Data)
				}
			})
			t.Run("options reply key=value NUL", func(t *testing.T) {
				p := r.expect(zk.CmdAckOK, r.send(zk.CmdOptionsRRQ, []byte("~Platform\x00")))
				if string(p.Data) != "~Platform=ZEM760_TFT\x00" {
					t.Errorf("option reply %q", p.Data)
				}
			})
			t.Run("unknown option, then pyzk's error clearing, all answered", func(t *testing.T) {
				r.expect(zk.CmdAckError, r.send(zk.CmdOptionsRRQ, []byte("~Nope\x00")))
				r.expect(zk.CmdAckUnknown, r.send(zk.CmdAckError, nil))
				for range 3 {
					r.expect(zk.CmdAckUnknown, r.send(zk.CmdAckUnknown, nil))
				}
			})
			t.Run("client ACK_OK is never answered", func(t *testing.T) {
				r.send(zk.CmdAckOK, nil)
				id := r.send(zk.CmdGetVersion, nil)
				if p := r.expect(zk.CmdAckOK, id); string(p.Data) != "Ver 6.60 Apr 26 2016\x00" {
					t.Errorf("version %q", p.Data)
				}
				r.silent(50 * time.Millisecond)
			})
			t.Run("small dataset inline as one CMD_DATA packet and nothing after", func(t *testing.T) {
				p := r.expect(zk.CmdData, r.send(zk.CmdPrepareBuffer, zk.EncodePrepareBuffer(zk.CmdAttLogRRQ, 0, 0)))
				if recs, err := zk.DecodeDataset(p.Data); err != nil || len(recs) != 400 {
					t.Errorf("inline dataset: %d record bytes, %v", len(recs), err)
				}
				r.silent(50 * time.Millisecond)
			})
			t.Run("free sizes fit a 1024-byte read", func(t *testing.T) {
				p := r.expect(zk.CmdAckOK, r.send(zk.CmdGetFreeSizes, nil))
				if s, err := zk.DecodeSizes(p.Data); err != nil || s.Records != 10 || len(p.Data) > 1024 {
					t.Errorf("sizes %+v, %v (%d bytes)", s, err, len(p.Data))
				}
			})
			t.Run("unknown command", func(t *testing.T) {
				r.expect(zk.CmdAckUnknown, r.send(zk.Command(4242), nil))
			})
			t.Run("exit", func(t *testing.T) {
				r.expect(zk.CmdAckOK, r.send(zk.CmdExit, nil))
				eventually(t, "the session ends", func() bool { return dev.Sessions() == 0 })
			})
		})
	}
}

// TestProtocolChunkFraming checks the answer to CMD_READ_BUFFER:
// CMD_PREPARE_DATA with 8 data bytes, the chunk (one TCP frame, or UDP
// datagrams of at most 1 024 data bytes), then CMD_ACK_OK, all with the
// request's reply id; and the inter-frame gap.
func TestProtocolChunkFraming(t *testing.T) {
	const gap = 15 * time.Millisecond
	for _, network := range []string{"tcp", "udp"} {
		t.Run(network, func(t *testing.T) {
			dev := start(t, Config{Records: 1000, FrameGap: gap})
			r := rawDial(t, dev, network)
			r.connect()
			p := r.expect(zk.CmdAckOK, r.send(zk.CmdPrepareBuffer, zk.EncodePrepareBuffer(zk.CmdAttLogRRQ, 0, 0)))
			if len(p.Data) != 13 {
				t.Errorf("prepare-buffer answer has %d bytes, want 13", len(p.Data))
			}
			total, _ := zk.DecodeBufferSize(p.Data)
			if total != 4+1000*40 {
				t.Fatalf("announced %d bytes, want %d", total, 4+1000*40)
			}
			id := r.send(zk.CmdReadBuffer, zk.EncodeReadBuffer(100, 5000))
			began := time.Now()
			prep := r.expect(zk.CmdPrepareData, id)
			if n, _ := zk.DecodePrepareData(prep.Data); len(prep.Data) != 8 || n != 5000 {
				t.Errorf("prepare data % x, want 8 bytes announcing 5000", prep.Data)
			}
			var chunk []byte
			packets := 0
			for len(chunk) < 5000 {
				d := r.expect(zk.CmdData, id)
				if network == "udp" && len(d.Data) > zk.MaxUDPData {
					t.Errorf("UDP data datagram of %d bytes", len(d.Data))
				}
				chunk = append(chunk, d.Data...)
				packets++
			}
			r.expect(zk.CmdAckOK, id)
			if want := map[string]int{"tcp": 1, "udp": 5}[network]; packets != want {
				t.Errorf("chunk in %d packets, want %d", packets, want)
			}
			if elapsed, min := time.Since(began), time.Duration(packets+1)*gap; elapsed < min {
				t.Errorf("%d packets after the first in %v, want at least %v with a %v gap", packets+1, elapsed, min, gap)
			}
			var att []byte
			for _, rec := range dev.Attendance() {
				att = append(att, rec.Raw...)
			}
			if want := zk.EncodeDataset(att)[100:5100]; !bytes.Equal(chunk, want) {
				t.Errorf("chunk differs from the device's dataset")
			}
			r.expect(zk.CmdAckOK, r.send(zk.CmdFreeData, nil))
			r.expect(zk.CmdAckError, r.send(zk.CmdReadBuffer, zk.EncodeReadBuffer(0, 100)))
		})
	}
}

func TestProtocolProbeConnection(t *testing.T) {
	dev := start(t, Config{})
	probe, err := net.Dial("tcp", dev.Addr())
	if err != nil {
		t.Fatal(err)
	}
	probe.Close() // pyzk's test_tcp: open and close without a byte
	c := dial(t, dev)
	if _, err := c.FreeSizes(testContext(t, 2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if st := dev.Stats(); st.Connections != 2 || st.Sessions != 1 {
		t.Errorf("stats %+v: want 2 connections, 1 session", st)
	}
}

func TestProtocolChecksumPolicy(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(map[bool]string{false: "lenient", true: "strict"}[strict], func(t *testing.T) {
			dev := start(t, Config{StrictChecksum: strict})
			r := rawDial(t, dev, "tcp")
			r.connect()
			pkt := zk.EncodePacket(zk.CmdGetVersion, r.sess, 77, nil)
			pkt[2] ^= 0xFF
			r.writeRaw(zk.EncodeTCPFrame(pkt))
			if strict {
				r.silent(100 * time.Millisecond)
			} else {
				r.expect(zk.CmdAckOK, 77)
			}
			if n := dev.Stats().BadChecksums; n != 1 {
				t.Errorf("%d bad checksums counted, want 1", n)
			}
		})
	}
}

func TestProtocolCommKey(t *testing.T) {
	dev := start(t, Config{CommKey: 123456})
	r := rawDial(t, dev, "tcp")
	id := r.send(zk.CmdConnect, nil)
	r.sess = r.expect(zk.CmdAckUnauth, id).SessionID
	r.expect(zk.CmdAckUnauth, r.send(zk.CmdGetFreeSizes, nil))
	wrong := zk.MakeCommKey(654321, r.sess, zk.DefaultTicks)
	r.expect(zk.CmdAckUnauth, r.send(zk.CmdAuth, wrong[:]))
	right := zk.MakeCommKey(123456, r.sess, zk.DefaultTicks)
	r.expect(zk.CmdAckOK, r.send(zk.CmdAuth, right[:]))
	r.expect(zk.CmdAckOK, r.send(zk.CmdGetFreeSizes, nil))
}
