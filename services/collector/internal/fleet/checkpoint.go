package fleet

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

// Checkpoint is how much of a device's attendance log was published. The
// device has no incremental read: every session downloads the whole log, and
// the checkpoint says where the new records start.
//
// It does not rely on times (device clocks jump): it records how many
// records the log held and the identity of the last of them (and of the
// first). The log only grows at its end until it is cleared, so a log that
// still holds that identity at that position continues the one published;
// anything else (fewer records, another record there) means the log was
// cleared or rewritten, and everything in it is published again. That is
// safe because every punch carries its id (Nats-Msg-Id) and duplicates are
// dropped by JetStream and the loaders.
type Checkpoint struct {
	// Count is the number of whole records at the start of the log that
	// were published (or dead-lettered) and acknowledged.
	Count int `json:"count"`
	// FirstID and LastID identify records 0 and Count-1.
	FirstID string `json:"first_id,omitempty"`
	LastID  string `json:"last_id,omitempty"`
	// RecordSize is the layout the records were read in.
	RecordSize int `json:"record_size,omitempty"`
	// Trailing identifies the partial record at the end of the dataset that
	// was dead-lettered, so that the same junk is not dead-lettered on every
	// poll.
	Trailing string `json:"trailing,omitempty"`
}

// Plan decides where publishing starts in a log of n records whose identities
// id returns. It returns the index of the first record to publish and, when
// the checkpoint cannot be continued, the reason (for the log); reason is
// empty when start == cp.Count or the checkpoint is empty.
func Plan(cp Checkpoint, n int, id func(i int) string) (start int, reason string) {
	switch {
	case cp.Count <= 0:
		return 0, ""
	case n < cp.Count:
		return 0, fmt.Sprintf("log shrank from %d to %d records (cleared?): publishing all again", cp.Count, n)
	case cp.FirstID != "" && id(0) != cp.FirstID:
		return 0, "first record differs from the checkpoint (log cleared and refilled?): publishing all again"
	case id(cp.Count-1) != cp.LastID:
		return 0, fmt.Sprintf("record %d differs from the checkpoint (log cleared and refilled?): publishing all again", cp.Count-1)
	}
	return cp.Count, ""
}

// logView is a device's attendance log in device order: decoded records and
// records that failed to decode, interleaved by their position, plus the
// partial record the dataset may end with.
type logView struct {
	serial   string
	recs     []zk.AttendanceRecord
	bad      []*zk.RecordError // whole records, by index
	trailing *zk.RecordError   // bytes after the last whole record, or nil
	size     int               // record size, 0 when unknown (empty log)
}

// newLogView arranges what zk.Client.Attendance returned.
func newLogView(serial string, recs []zk.AttendanceRecord, bad []*zk.RecordError) *logView {
	v := &logView{serial: serial, recs: recs, bad: slices.Clone(bad)}
	if len(recs) > 0 {
		v.size = len(recs[0].Raw)
	} else {
		for _, b := range bad {
			v.size = max(v.size, len(b.Raw))
		}
	}
	sort.SliceStable(v.bad, func(i, j int) bool { return v.bad[i].Index < v.bad[j].Index })
	if k := len(v.bad); k > 0 {
		// zk.DecodeAttendance reports bytes after the last whole record as one
		// more, shorter, record error at index n.
		if last := v.bad[k-1]; len(last.Raw) < v.size && last.Index == len(recs)+k-1 {
			v.trailing = last
			v.bad = v.bad[:k-1]
		}
	}
	return v
}

// n is the number of whole records.
func (v *logView) n() int { return len(v.recs) + len(v.bad) }

// at returns record i: a decoded record, or the error of one that failed.
func (v *logView) at(i int) (*zk.AttendanceRecord, *zk.RecordError) {
	k := sort.Search(len(v.bad), func(j int) bool { return v.bad[j].Index >= i })
	if k < len(v.bad) && v.bad[k].Index == i {
		return nil, v.bad[k]
	}
	return &v.recs[i-k], nil
}

// id is the identity of record i (see recordID).
func (v *logView) id(i int) string {
	r, bad := v.at(i)
	if bad != nil {
		return rawID(v.serial, bad.Raw)
	}
	return punchID(v.serial, r)
}

// checkpoint is the checkpoint after every record of v was published.
func (v *logView) checkpoint(prev Checkpoint) Checkpoint {
	cp := Checkpoint{Count: v.n(), RecordSize: v.size, Trailing: prev.Trailing}
	if cp.Count > 0 {
		cp.FirstID, cp.LastID = v.id(0), v.id(cp.Count-1)
	}
	if v.trailing != nil {
		cp.Trailing = rawID(v.serial, v.trailing.Raw)
	}
	return cp
}

// punchID is a decoded record's identity: the id of the punch it becomes.
func punchID(serial string, r *zk.AttendanceRecord) string {
	return proto.PunchID(serial, r.UserID, proto.FormatLocalTime(r.DeviceTime), r.State)
}

// rawID is the identity of bytes that did not decode: a hash of the device
// and the bytes, "raw-" and 32 hex digits. It is also their dead letter's id.
func rawID(serial string, raw []byte) string {
	h := sha256.New()
	h.Write([]byte(serial))
	h.Write([]byte{0})
	h.Write(raw)
	return "raw-" + hex.EncodeToString(h.Sum(nil)[:16])
}
