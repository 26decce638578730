package fleet

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/publish"
	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// errSerialMismatch reports a device that answers with another serial number
// than configured: the address now reaches another unit (a DHCP lease
// moved), and its punches must not be published under the wrong serial.
var errSerialMismatch = errors.New("serial number mismatch")

// report is what one session found, for its heartbeat and its log line.
type report struct {
	runID     string
	start     time.Time
	reachable bool // the device answered CMD_CONNECT
	latency   time.Duration
	info      zk.DeviceInfo
	sizes     zk.Sizes
	haveSizes bool
	offset    *int64 // ms, nil when not measured
	published int    // punches acknowledged by JetStream (new or again)
	rejected  int    // records dead-lettered
	err       error
}

// classify maps a session's error to a heartbeat error class.
func classify(err error, reachable bool) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, zk.ErrUnauthorized):
		return proto.ErrorClassUnauthorized
	case errors.Is(err, errPublish):
		return proto.ErrorClassPublish
	case errors.Is(err, errConflict):
		return proto.ErrorClassInternal
	case errors.Is(err, zk.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return proto.ErrorClassTimeout
	case !reachable && (errors.Is(err, zk.ErrConnection) || errors.Is(err, zk.ErrRejected) || errors.Is(err, syscall.ECONNREFUSED)):
		return proto.ErrorClassRefused
	case errors.Is(err, zk.ErrConnection):
		return proto.ErrorClassIO
	case errors.Is(err, errSerialMismatch), errors.Is(err, zk.ErrBadReply), errors.Is(err, zk.ErrLayout),
		errors.Is(err, zk.ErrBadDataset), errors.Is(err, zk.ErrUnsupported), errors.Is(err, zk.ErrRejected),
		errors.Is(err, zk.ErrShortRead), errors.Is(err, zk.ErrBadChecksum), errors.Is(err, zk.ErrBadMagic),
		errors.Is(err, zk.ErrFrameTooLarge):
		return proto.ErrorClassProtocol
	}
	return proto.ErrorClassInternal
}

// heartbeat renders r as the device's heartbeat. A session that succeeded
// but dead-lettered records reports class "protocol" with the count, so that
// a device sending garbage is visible.
func (r *report) heartbeat(dev *Device, runID string) proto.Heartbeat {
	hb := proto.Heartbeat{
		Source: dev.Serial, Kind: proto.HeartbeatDevice, Site: dev.Site, Address: dev.Addr(),
		ObservedAt: time.Now().UTC(), RunID: runID, Reachable: r.reachable,
		LatencyMS:  float64(r.latency.Microseconds()) / 1000,
		DurationMS: float64(time.Since(r.start).Microseconds()) / 1000,
		Firmware:   r.info.Firmware, Platform: r.info.Platform, DeviceName: r.info.DeviceName,
		RecordsPublished: r.published, RecordsRejected: r.rejected,
	}
	if r.haveSizes {
		hb.Users, hb.Records, hb.RecordCapacity = r.sizes.Users, r.sizes.Records, r.sizes.RecordCapacity
		if r.sizes.RecordCapacity > 0 {
			hb.CapacityUsed = float64(r.sizes.Records) / float64(r.sizes.RecordCapacity)
		}
	}
	if r.offset != nil {
		hb.ClockOffsetMS = *r.offset
	}
	if r.err != nil {
		hb.ErrorClass, hb.Error = classify(r.err, r.reachable), r.err.Error()
	} else if r.rejected > 0 {
		hb.ErrorClass, hb.Error = proto.ErrorClassProtocol, itoa(r.rejected)+" records did not decode and were dead-lettered"
	}
	return proto.NewHeartbeat(hb)
}

// publishHeartbeat publishes hb (see publish.Heartbeat). The last heartbeat
// of a session is published after the device was let go, so that a replica
// that stops still reports it.
func (f *Fleet) publishHeartbeat(ctx context.Context, hb proto.Heartbeat) {
	publish.Heartbeat(ctx, f.pub, hb, f.metrics, f.log)
}
