package fleet

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-retry"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// Publisher is the slice of jetstream.JetStream the fleet publishes with.
type Publisher interface {
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// DeadLetterer publishes a dead letter and waits for its acknowledgement
// (dispose.Disposer).
type DeadLetterer interface {
	DeadLetter(ctx context.Context, dl proto.DeadLetter, body []byte) error
}

// errPublish marks failures to store what was read (JetStream); the
// heartbeat reports them as error class "publish".
var errPublish = errors.New("publish")

// punches builds the raw punch messages of one session. The header values
// that are the same for every message of the session are shared.
type punches struct {
	dev         *Device
	subject     string
	source      string
	kind        string
	runID       string
	collectedAt time.Time
	offset      *int64
	// shared header values
	hType, hVersion, hCorr, hTrace []string
}

func newPunches(dev *Device, runID, trace string, offset *int64) *punches {
	kind := "zk_tcp"
	if dev.UDP {
		kind = "zk_udp"
	}
	return &punches{
		dev: dev, subject: proto.RawPunchSubject(dev.Site, dev.Serial), source: "zk:" + dev.Serial, kind: kind,
		runID: runID, collectedAt: time.Now().UTC(), offset: offset,
		hType: []string{proto.KindRawPunch}, hVersion: []string{proto.SchemaVersion},
		hCorr: []string{runID}, hTrace: []string{trace},
	}
}

// msgSize is the buffer a punch is encoded into: one allocation of about
// its size (a punch encodes to 350–450 bytes).
const msgSize = 512

// msg returns the message of one punch. It fails when the punch cannot be
// encoded (the caller dead-letters the record). The punch is not validated
// against the contract again: zk validated the record (a printable user id
// of at most 24 bytes, a time in 2000–2099, a state of 0–5 or 255, a verify
// mode of 0–31), which is stricter than RawPunch.Validate, and the fleet
// file guarantees the serial and the site.
func (p *punches) msg(r *zk.AttendanceRecord) (*nats.Msg, error) {
	rp := proto.NewRawPunch(proto.RawPunch{
		Source: p.source, SourceKind: p.kind, Site: p.dev.Site, DeviceSerial: p.dev.Serial,
		UserID: r.UserID, UID: r.UID, DeviceTime: proto.FormatLocalTime(r.DeviceTime), DeviceTimeZone: p.dev.TimeZone,
		VerifyMode: r.VerifyMode, State: r.State, WorkCode: r.WorkCode,
		CollectedAt: p.collectedAt, RunID: p.runID, ClockOffsetMS: p.offset,
	})
	data, err := proto.AppendEncode(make([]byte, 0, msgSize), &rp)
	if err != nil {
		return nil, err
	}
	h := nats.Header{
		proto.HeaderMsgID:         {rp.ID},
		proto.HeaderType:          p.hType,
		proto.HeaderSchemaVersion: p.hVersion,
		proto.HeaderCorrelationID: p.hCorr,
		proto.HeaderTraceparent:   p.hTrace,
	}
	return &nats.Msg{Subject: p.subject, Data: data, Header: h}, nil
}

// deadLetter returns the dead letter of a record (or event) that did not
// decode: its raw bytes are the body, its position and the reason travel in
// the headers, and its id derives from the device and the bytes, so that
// dead-lettering it again is de-duplicated.
func (p *punches) deadLetter(re *zk.RecordError, what string) proto.DeadLetter {
	code := proto.ReasonInvalid
	if errors.Is(re, zk.ErrLayout) || re.Err == nil {
		code = proto.ReasonDecode
	}
	return proto.DeadLetter{
		Stage: proto.StageCollect, ReasonCode: code,
		Reason:          fmt.Sprintf("device %s %s: %v", p.dev.Serial, what, re),
		OriginalSubject: p.subject, SourceFile: "zk:" + p.dev.Serial + "/" + what, SourceLine: re.Index + 1,
		FailedAt: time.Now().UTC(), MsgID: rawID(p.dev.Serial, re.Raw), CorrelationID: p.runID,
	}
}

// publishOne publishes one message and waits for its acknowledgement,
// retrying within budget (live events).
func publishOne(ctx context.Context, pub Publisher, m *nats.Msg, budget time.Duration) error {
	bo := retry.WithMaxDuration(budget, retry.WithCappedDuration(time.Second, retry.WithJitterPercent(20, retry.NewExponential(50*time.Millisecond))))
	return retry.Do(ctx, bo, func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := pub.PublishMsg(pctx, m); err != nil {
			return retry.RetryableError(fmt.Errorf("%w: %s %s: %v", errPublish, m.Subject, m.Header.Get(proto.HeaderMsgID), err))
		}
		return nil
	})
}

// offsetMS renders a clock offset for RawPunch.ClockOffsetMS.
func offsetMS(d time.Duration) *int64 {
	ms := d.Milliseconds()
	return &ms
}

func itoa(i int) string { return strconv.Itoa(i) }
