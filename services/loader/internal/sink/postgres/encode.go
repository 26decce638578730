package postgres

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// encode turns the events of b into COPY rows in eventColumns order. A value
// that cannot be stored faithfully is a permanent error naming the event.
func encode(b *sink.Batch) ([][]any, error) {
	rows := make([][]any, len(b.Events))
	for i := range b.Events {
		e := &b.Events[i]
		workDate, err := time.Parse(time.DateOnly, e.WorkDate)
		if err != nil {
			return nil, refused(e, "work_date %q is not a date as YYYY-MM-DD", e.WorkDate)
		}
		flags, err := joinFlags(e.Flags)
		if err != nil {
			return nil, refused(e, "%v", err)
		}
		rawSeq, err := seq(e.Lineage.RawSequence)
		if err != nil {
			return nil, refused(e, "lineage.raw_sequence: %v", err)
		}
		cleanSeq, err := seq(e.Seq)
		if err != nil {
			return nil, refused(e, "clean sequence: %v", err)
		}
		if e.State < math.MinInt32 || e.State > math.MaxInt32 || e.VerifyMode < math.MinInt32 || e.VerifyMode > math.MaxInt32 {
			return nil, refused(e, "state %d or verify_mode %d does not fit in an integer", e.State, e.VerifyMode)
		}
		var personID any
		if e.PersonID != "" {
			personID = e.PersonID
		}
		rows[i] = []any{
			e.ID, e.RulesVersion, e.Site, e.DeviceSerial, e.UserID, personID,
			e.OccurredAt, e.DeviceTime, e.TimeZone, e.Direction, e.State, e.VerifyMode,
			workDate, flags,
			e.Lineage.RawID, e.Lineage.RawSubject, e.Lineage.RawStream, rawSeq, cleanSeq,
			e.Lineage.RunID, e.Lineage.CorrelationID, b.ID,
		}
	}
	return rows, nil
}

func refused(e *sink.Event, format string, args ...any) error {
	return fault.NewPermanent(proto.ReasonRejectedBySink,
		fmt.Errorf("event %s: %s", e.ID, fmt.Sprintf(format, args...)))
}

// joinFlags stores flags as one comma-separated column. A flag that is
// empty or holds a comma would not read back as itself, so it is refused.
func joinFlags(flags []string) (string, error) {
	for _, f := range flags {
		if f == "" || strings.Contains(f, ",") {
			return "", fmt.Errorf("flag %q cannot be stored in a comma-separated list", f)
		}
	}
	return strings.Join(flags, ","), nil
}

// seq converts a stream sequence to a bigint.
func seq(u uint64) (int64, error) {
	if u > math.MaxInt64 {
		return 0, fmt.Errorf("%d does not fit in a bigint", u)
	}
	return int64(u), nil
}

// batchSeqs returns b's first and last CLEAN sequence as bigints.
func batchSeqs(b *sink.Batch) (first, last int64, err error) {
	if first, err = seq(b.FirstSeq); err != nil {
		return 0, 0, fault.NewPermanent(proto.ReasonRejectedBySink, fmt.Errorf("batch first sequence: %w", err))
	}
	if last, err = seq(b.LastSeq); err != nil {
		return 0, 0, fault.NewPermanent(proto.ReasonRejectedBySink, fmt.Errorf("batch last sequence: %w", err))
	}
	return first, last, nil
}
