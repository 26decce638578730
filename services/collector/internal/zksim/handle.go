package zksim

import (
	"encoding/binary"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// handleLocked answers one request of session s. It reports false when the
// request gets no answer (a client's CMD_ACK_OK, an ignored CMD_CONNECT).
func (d *Device) handleLocked(s *session, p zk.Packet) (reply, bool) {
	d.stats.Requests++
	s.lastSeen = time.Now()
	f := d.cfg.Faults
	sid := s.id
	if !s.connected {
		sid = p.SessionID
	}
	one := func(cmd zk.Command, data []byte) (reply, bool) {
		return reply{packets: [][]byte{zk.EncodePacket(cmd, sid, p.ReplyID, data)}, delay: f.Latency}, true
	}
	ok := func() (reply, bool) { return one(zk.CmdAckOK, nil) }

	switch p.Command {
	case zk.CmdAckOK:
		// Clients acknowledge events (and gozk pings when idle). Answering
		// would start an endless ping-pong with pyzk.
		d.stats.AcksReceived++
		return reply{}, false
	case zk.CmdConnect:
		return d.connectLocked(s, p)
	case zk.CmdExit:
		r, _ := ok()
		r.end = true
		return r, true
	}
	if !s.connected {
		return one(zk.CmdAckErrorInit, nil)
	}
	if !s.authed && p.Command != zk.CmdAuth {
		return one(zk.CmdAckUnauth, nil)
	}

	switch p.Command {
	case zk.CmdAuth:
		if d.cfg.CommKey == 0 || zk.CheckCommKey(p.Data, d.cfg.CommKey, s.id) {
			s.authed = true
			return ok()
		}
		return one(zk.CmdAckUnauth, nil)
	case zk.CmdEnableDevice:
		d.stats.Enables++
		s.disabler = false
		d.setEnabledLocked(true)
		return ok()
	case zk.CmdDisableDevice:
		d.stats.Disables++
		s.disabler = true
		d.setEnabledLocked(false)
		return ok()
	case zk.CmdGetVersion:
		return one(zk.CmdAckOK, append([]byte(d.cfg.Firmware), 0))
	case zk.CmdOptionsRRQ:
		key := zk.DecodeOptionRequest(p.Data)
		v, found := d.option(key)
		if !found {
			return one(zk.CmdAckError, nil)
		}
		return one(zk.CmdAckOK, zk.EncodeOptionReply(key, v))
	case zk.CmdGetPinWidth:
		return one(zk.CmdAckOK, []byte{9}) // exactly one byte: pyzk reads 9 bytes
	case zk.CmdGetFreeSizes:
		return one(zk.CmdAckOK, zk.EncodeSizes(d.sizesLocked()))
	case zk.CmdGetTime:
		v, err := zk.EncodeTime(d.nowLocked())
		if err != nil {
			return one(zk.CmdAckError, nil)
		}
		return one(zk.CmdAckOK, binary.LittleEndian.AppendUint32(nil, v))
	case zk.CmdSetTime:
		if len(p.Data) < 4 {
			return one(zk.CmdAckError, nil)
		}
		t, err := zk.DecodeTime(binary.LittleEndian.Uint32(p.Data))
		if err != nil {
			return one(zk.CmdAckError, nil)
		}
		d.skew = t.Sub(wall(time.Now(), d.cfg.Location))
		return ok()
	case zk.CmdPrepareBuffer:
		return d.prepareLocked(s, p, one)
	case zk.CmdReadBuffer:
		return d.readBufferLocked(s, p, one)
	case zk.CmdFreeData:
		d.stats.Frees++
		s.buffer = nil
		return ok()
	case zk.CmdAttLogRRQ, zk.CmdUserTempRRQ:
		d.stats.LegacyReads++
		data, _ := d.datasetLocked(p.Command)
		pkts := [][]byte{zk.EncodePacket(zk.CmdPrepareData, sid, p.ReplyID, zk.EncodePrepareData(len(data)))}
		pkts = d.appendData(pkts, sid, p.ReplyID, data, zk.MaxUDPData)
		pkts = append(pkts, zk.EncodePacket(zk.CmdAckOK, sid, p.ReplyID, nil))
		return reply{packets: pkts, delay: f.Latency}, true
	case zk.CmdClearAttLog:
		d.att, d.queued = nil, nil
		return ok()
	case zk.CmdClearData:
		if len(p.Data) == 0 || p.Data[0] == zk.ClearAttLogs {
			d.att, d.queued = nil, nil
		}
		if len(p.Data) == 0 || p.Data[0] == zk.ClearUsers {
			d.users = nil
		}
		return ok()
	case zk.CmdRegEvent:
		var mask [4]byte
		copy(mask[:], p.Data)
		s.events = binary.LittleEndian.Uint32(mask[:])
		if s.events != 0 {
			d.stats.Registrations++
		}
		return ok()
	case zk.CmdOptionsWRQ, zk.CmdRefreshData, zk.CmdCancelCapture, zk.CmdStartVerify,
		zk.CmdUnlock, zk.CmdRestart, zk.CmdPowerOff:
		return ok()
	default:
		// Includes pyzk's CMD_ACK_ERROR / CMD_ACK_UNKNOWN "requests", which
		// must be answered.
		return one(zk.CmdAckUnknown, nil)
	}
}

// connectLocked opens (or re-confirms) a session.
func (d *Device) connectLocked(s *session, p zk.Packet) (reply, bool) {
	f := d.cfg.Faults
	answer := func(cmd zk.Command, sid uint16) (reply, bool) {
		return reply{packets: [][]byte{zk.EncodePacket(cmd, sid, p.ReplyID, nil)}, delay: f.Latency}, true
	}
	switch {
	case f.IgnoreConnect:
		return reply{}, false
	case f.RefuseConnect:
		d.stats.Refused++
		return answer(zk.CmdAckError, 0)
	}
	if f.OneSession != SessionsUnlimited && !s.holdsSlot {
		// TCP sessions take the slot before handling CONNECT; this is UDP.
		d.expireUDPLocked()
		select {
		case d.slot <- struct{}{}:
			s.holdsSlot = true
		default:
			if f.OneSession == SessionsBlock {
				return reply{}, false
			}
			d.stats.Refused++
			return answer(zk.CmdAckError, 0)
		}
	}
	if !s.connected {
		s.connected = true
		s.id = d.newSessionIDLocked()
		s.authed = d.cfg.CommKey == 0
		d.stats.Sessions++
	}
	if !s.authed {
		return answer(zk.CmdAckUnauth, s.id)
	}
	return answer(zk.CmdAckOK, s.id)
}

func (d *Device) newSessionIDLocked() uint16 {
	id := d.nextID
	d.nextID++
	if d.nextID == 0 {
		d.nextID = 1
	}
	return id
}

// prepareLocked stages a dataset: small ones are answered inline as one
// CMD_DATA packet, large ones with CMD_ACK_OK and the 13-byte size record.
func (d *Device) prepareLocked(s *session, p zk.Packet, one func(zk.Command, []byte) (reply, bool)) (reply, bool) {
	if d.cfg.NoBufferedRead {
		return one(zk.CmdAckUnknown, nil)
	}
	inner, _, _, err := zk.DecodePrepareBuffer(p.Data)
	if err != nil {
		return one(zk.CmdAckError, nil)
	}
	data, found := d.datasetLocked(inner)
	if !found {
		return one(zk.CmdAckError, nil)
	}
	d.stats.Prepares++
	if len(data) <= d.cfg.InlineMax {
		d.stats.InlineReplies++
		s.buffer = nil
		return one(zk.CmdData, data)
	}
	s.buffer = data
	return one(zk.CmdAckOK, zk.EncodeBufferSize(len(data)))
}

// readBufferLocked answers CMD_READ_BUFFER with CMD_PREPARE_DATA, the chunk
// (one TCP frame, or datagrams of at most 1 024 bytes) and CMD_ACK_OK, all
// with the request's reply id, applying the chunk faults.
func (d *Device) readBufferLocked(s *session, p zk.Packet, one func(zk.Command, []byte) (reply, bool)) (reply, bool) {
	d.stats.ChunkReads++
	n := d.stats.ChunkReads
	start, size, err := zk.DecodeReadBuffer(p.Data)
	if err != nil || s.buffer == nil || start >= len(s.buffer) {
		return one(zk.CmdAckError, nil)
	}
	chunk := s.buffer[start : start+min(size, len(s.buffer)-start)]
	f := d.cfg.Faults
	r := reply{delay: f.Latency + f.ChunkDelay}
	r.packets = append(r.packets, zk.EncodePacket(zk.CmdPrepareData, s.id, p.ReplyID, zk.EncodePrepareData(len(chunk))))
	maxData := len(chunk)
	if s.udpKey != "" {
		maxData = zk.MaxUDPData
	}
	r.packets = d.appendData(r.packets, s.id, p.ReplyID, chunk, maxData)
	r.packets = append(r.packets, zk.EncodePacket(zk.CmdAckOK, s.id, p.ReplyID, nil))
	if n == f.StallOnChunk {
		r.delay += f.Stall
	}
	if n == f.ResetOnChunk {
		d.stats.Resets++
		r.cut = 1 // the first CMD_DATA packet
	}
	return r, true
}

// appendData splits data into CMD_DATA packets of at most maxData bytes.
func (d *Device) appendData(pkts [][]byte, sid, reply uint16, data []byte, maxData int) [][]byte {
	for len(data) > 0 {
		n := min(len(data), max(maxData, 1))
		pkts = append(pkts, zk.EncodePacket(zk.CmdData, sid, reply, data[:n]))
		data = data[n:]
	}
	return pkts
}
