package zk

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MaxDatasetSize bounds the dataset size a device may announce (the largest
// logs, 100 000 records of 49 bytes, are under 5 MB).
const MaxDatasetSize = 64 << 20

// Attendance reads the whole attendance log. It reads CMD_GET_FREE_SIZES for
// the record count, downloads the dataset with the buffered read
// (CMD_PREPARE_BUFFER, then CMD_READ_BUFFER per chunk with a timeout and
// retries per chunk, then CMD_FREE_DATA), falling back to the legacy direct
// read (CMD_ATTLOG_RRQ) when the device rejects the buffered one, infers the
// record layout from the dataset length and the count (or uses WithRecordSize),
// and decodes every record. For the 8- and 16-byte layouts it also reads the
// users to fill in what the records lack (see ResolveUsers).
//
// Records that fail validation come back as *RecordError values, with their
// raw bytes; they never abort the others. The error result reports a failed
// transfer or an unknown layout, and then no records are returned.
//
// Call it inside WithDisabled: a punch arriving between the count and the
// download can make the layout inference wrong. The device has no incremental
// read; every call downloads the whole log.
func (c *Client) Attendance(ctx context.Context) ([]AttendanceRecord, []*RecordError, error) {
	var (
		recs []AttendanceRecord
		bad  []*RecordError
	)
	err := c.call(ctx, "read attendance from", func() error {
		sizes, err := c.freeSizes(ctx)
		if err != nil {
			return fmt.Errorf("free sizes: %w", err)
		}
		records, err := c.readDataset(ctx, CmdAttLogRRQ, 0)
		if err != nil {
			return err
		}
		size := c.cfg.recordSize
		if size == 0 {
			if size, err = AttendanceRecordSize(len(records), sizes.Records); err != nil {
				return err
			}
		}
		if len(records) == 0 {
			return nil
		}
		if recs, bad, err = DecodeAttendance(records, size); err != nil {
			return err
		}
		if size == AttendanceSize8 || size == AttendanceSize16 {
			users, _, err := c.users(ctx)
			if err != nil {
				recs, bad = nil, nil
				return fmt.Errorf("read users to resolve %d-byte records: %w", size, err)
			}
			ResolveUsers(recs, users)
		}
		return nil
	})
	return recs, bad, err
}

// Users reads the user table, like Attendance: buffered read with legacy
// fallback, layout inferred from the user count (or WithUserSize), bad
// records returned as *RecordError values.
func (c *Client) Users(ctx context.Context) ([]User, []*RecordError, error) {
	var (
		users []User
		bad   []*RecordError
	)
	err := c.call(ctx, "read users from", func() (err error) {
		users, bad, err = c.users(ctx)
		return err
	})
	return users, bad, err
}

func (c *Client) users(ctx context.Context) ([]User, []*RecordError, error) {
	sizes, err := c.freeSizes(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("free sizes: %w", err)
	}
	records, err := c.readDataset(ctx, CmdUserTempRRQ, FctUser)
	if err != nil {
		return nil, nil, err
	}
	size := c.cfg.userSize
	if size == 0 {
		if size, err = UserRecordSize(len(records), sizes.Users); err != nil {
			return nil, nil, err
		}
	}
	if len(records) == 0 {
		return nil, nil, nil
	}
	return DecodeUsers(records, size)
}

// readDataset downloads the dataset of inner and returns its record bytes.
func (c *Client) readDataset(ctx context.Context, inner Command, fct uint32) ([]byte, error) {
	var data []byte
	if c.cfg.legacy {
		var err error
		if data, err = c.readDirect(ctx, inner); err != nil {
			return nil, fmt.Errorf("legacy %v read: %w", inner, err)
		}
	} else {
		p, err := c.request(ctx, CmdPrepareBuffer, EncodePrepareBuffer(inner, fct, 0))
		if err != nil {
			return nil, fmt.Errorf("prepare %v buffer: %w", inner, err)
		}
		switch p.Command {
		case CmdData: // small dataset, sent inline
			data = p.Data
		case CmdAckOK:
			size, err := DecodeBufferSize(p.Data)
			if err == nil && size > MaxDatasetSize {
				err = fmt.Errorf("announced dataset of %d bytes exceeds %d: %w", size, MaxDatasetSize, ErrBadReply)
			}
			if err != nil {
				c.freeBuffer(ctx)
				return nil, err
			}
			data, err = c.readChunks(ctx, size)
			c.freeBuffer(ctx)
			if err != nil {
				return nil, fmt.Errorf("buffered %v read of %d bytes: %w", inner, size, err)
			}
		case CmdAckUnknown, CmdAckErrorCmd, CmdAckError:
			rerr := &ReplyError{Request: CmdPrepareBuffer, Reply: p.Command}
			if data, err = c.readDirect(ctx, inner); err != nil {
				return nil, fmt.Errorf("buffered read rejected (%w), legacy %v read: %w", rerr, inner, err)
			}
		default:
			return nil, fmt.Errorf("prepare %v buffer: %w", inner, &ReplyError{Request: CmdPrepareBuffer, Reply: p.Command})
		}
	}
	records, err := DecodeDataset(data)
	if err != nil {
		return nil, fmt.Errorf("%v dataset: %w", inner, err)
	}
	return records, nil
}

// freeBuffer releases the device's read buffer. A failure is ignored: the
// data was already read (or the read failed for a reason reported
// elsewhere), and the device frees the buffer with the next prepare or at
// the session's end. It is skipped when ctx is done, so that a cancelled read
// returns at once.
func (c *Client) freeBuffer(ctx context.Context) {
	if c.broken != nil || ctx.Err() != nil {
		return
	}
	_ = c.simple(ctx, CmdFreeData, nil)
}

// readChunks reads a staged dataset of total bytes with CMD_READ_BUFFER.
// Each chunk has its own timeout and is requested again after a timeout or a
// short answer, up to the configured retries; over UDP a failed chunk also
// halves the chunk size (down to one datagram) for the rest of the read.
func (c *Client) readChunks(ctx context.Context, total int) ([]byte, error) {
	chunk := c.cfg.chunkSize
	if chunk == 0 {
		chunk = ChunkSizeTCP
		if c.t.isUDP() {
			chunk = ChunkSizeUDP
		}
	}
	out := make([]byte, 0, total)
	for len(out) < total {
		start := len(out)
		for attempt := 0; ; attempt++ {
			n := min(chunk, total-start)
			var err error
			if out, err = c.readChunk(ctx, out, start, n); err == nil {
				break
			}
			if attempt >= c.cfg.retries || !(errors.Is(err, ErrTimeout) || errors.Is(err, ErrShortRead)) {
				return nil, fmt.Errorf("chunk at %d (%d bytes, attempt %d): %w", start, n, attempt+1, err)
			}
			if c.t.isUDP() && chunk > MaxUDPData {
				chunk = max(chunk/2, MaxUDPData)
			}
		}
	}
	return out, nil
}

// readChunk requests size bytes at start and appends them to out. The device
// answers CMD_PREPARE_DATA, CMD_DATA (one TCP frame, or datagrams of at most
// 1 024 bytes) and CMD_ACK_OK, all with the request's reply id; the chunk is
// complete as soon as size bytes are in. On failure out is returned
// unextended.
func (c *Client) readChunk(ctx context.Context, out []byte, start, size int) ([]byte, error) {
	base := len(out)
	id, err := c.send(ctx, CmdReadBuffer, EncodeReadBuffer(start, size))
	if err != nil {
		return out, err
	}
	deadline := time.Now().Add(c.cfg.chunkTimeout)
	for {
		p, err := c.await(ctx, id, deadline)
		if err != nil {
			return out[:base], err
		}
		switch p.Command {
		case CmdPrepareData:
		case CmdData:
			if len(out)-base+len(p.Data) > size {
				return out[:base], fmt.Errorf("chunk overflows: %d + %d bytes, want %d: %w", len(out)-base, len(p.Data), size, ErrBadReply)
			}
			out = append(out, p.Data...)
			if len(out)-base == size {
				return out, nil
			}
		case CmdAckOK:
			return out[:base], fmt.Errorf("%w: %d of %d bytes", ErrShortRead, len(out)-base, size)
		default:
			return out[:base], &ReplyError{Request: CmdReadBuffer, Reply: p.Command}
		}
	}
}

// readDirect performs the legacy direct read: the inner command sent on its
// own, answered by CMD_PREPARE_DATA (size), CMD_DATA packets and CMD_ACK_OK.
// The whole read is one unit: it is repeated after a timeout or a short
// answer, up to the configured retries.
func (c *Client) readDirect(ctx context.Context, inner Command) ([]byte, error) {
	var err error
	for range c.cfg.retries + 1 {
		var data []byte
		if data, err = c.readDirectOnce(ctx, inner); err == nil {
			return data, nil
		}
		if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrShortRead) {
			break
		}
	}
	return nil, err
}

func (c *Client) readDirectOnce(ctx context.Context, inner Command) ([]byte, error) {
	id, err := c.send(ctx, inner, nil)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.cfg.chunkTimeout)
	var out []byte
	want := -1
	for {
		p, err := c.await(ctx, id, deadline)
		if err != nil {
			return nil, err
		}
		switch p.Command {
		case CmdPrepareData:
			if want, err = DecodePrepareData(p.Data); err != nil {
				return nil, err
			}
			if want > MaxDatasetSize {
				return nil, fmt.Errorf("announced dataset of %d bytes exceeds %d: %w", want, MaxDatasetSize, ErrBadReply)
			}
			out = make([]byte, 0, want)
		case CmdData:
			out = append(out, p.Data...)
			if want < 0 {
				return out, nil // without CMD_PREPARE_DATA the whole dataset came in one packet
			}
			if len(out) >= want {
				return out[:want], nil
			}
		case CmdAckOK:
			if want < 0 {
				return EncodeDataset(nil), nil // nothing to send
			}
			return nil, fmt.Errorf("%w: %d of %d bytes", ErrShortRead, len(out), want)
		default:
			return nil, &ReplyError{Request: inner, Reply: p.Command}
		}
	}
}
