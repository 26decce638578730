package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/daily"
)

// recompute recomputes the days of keys from their punches that count (a
// punch's latest version, daily.Counted) and upserts them into
// daily_attendance, recording batchID as the batch that last recomputed
// them; a day none of whose punches counts any more loses its row. It
// returns how many days it wrote.
//
// The punches are read with a locking read (LOCK IN SHARE MODE) at
// REPEATABLE READ: it reads the latest committed rows and takes next-key
// locks on each day's index range, so that a concurrent writer cannot add
// a punch to one of these days until this transaction commits, and this
// transaction waits for a concurrent writer that already added one. Two
// writers that each added a punch to the same day and then read it
// deadlock; the server rolls one back (a transient error, retried), and the
// other's summary includes every punch.
func (s *Sink) recompute(ctx context.Context, tx *sql.Tx, batchID string, keys []daily.Key) (int, error) {
	keys = daily.SortedKeys(keys)
	if len(keys) == 0 {
		return 0, nil
	}
	punches := make(map[daily.Key][]daily.Punch, len(keys))
	for start := 0; start < len(keys); start += keyChunk {
		chunk := keys[start:min(start+keyChunk, len(keys))]
		if err := readPunches(ctx, tx, chunk, punches); err != nil {
			return 0, err
		}
	}
	days, err := s.days.Days(punches)
	if err != nil {
		return 0, fault.NewPermanent(proto.ReasonRejectedBySink, err)
	}
	// A day none of whose punches counts any more (a replay moved them
	// all to other days) has no row.
	var gone []any
	for _, k := range keys {
		if len(punches[k]) == 0 {
			gone = append(gone, k.WorkDate, k.Site, k.UserID)
		}
	}
	for start := 0; start < len(gone); start += 3 * keyChunk {
		chunk := gone[start:min(start+3*keyChunk, len(gone))]
		if _, err := tx.ExecContext(ctx, `DELETE FROM daily_attendance WHERE (work_date, site, user_id) IN (`+
			repeatRows("(?, ?, ?)", len(chunk)/3)+`)`, chunk...); err != nil {
			return 0, fmt.Errorf("delete %d rows of daily_attendance: %w", len(chunk)/3, err)
		}
	}
	for start := 0; start < len(days); start += keyChunk {
		chunk := days[start:min(start+keyChunk, len(days))]
		args := make([]any, 0, 15*len(chunk))
		for _, d := range chunk {
			var person any
			if d.PersonID != "" {
				person = d.PersonID
			}
			args = append(args, d.WorkDate, d.Site, d.UserID, person, d.TimeZone, optionalTime(d.FirstIn), optionalTime(d.LastOut),
				int64(d.WorkedMinutes), int64(d.LateMinutes), int64(d.EarlyLeaveMinutes), int64(d.OvertimeMinutes), d.Shift,
				int64(d.PunchCount), int64(d.DoublePunches), batchID)
		}
		q := `INSERT INTO daily_attendance (work_date, site, user_id, person_id, time_zone, first_in, last_out,
			worked_minutes, late_minutes, early_leave_minutes, overtime_minutes, shift, punch_count, double_punches, batch_id) VALUES ` +
			repeatRows("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", len(chunk)) + `
			ON DUPLICATE KEY UPDATE person_id = VALUES(person_id), time_zone = VALUES(time_zone),
			  first_in = VALUES(first_in), last_out = VALUES(last_out),
			  worked_minutes = VALUES(worked_minutes), late_minutes = VALUES(late_minutes),
			  early_leave_minutes = VALUES(early_leave_minutes), overtime_minutes = VALUES(overtime_minutes),
			  shift = VALUES(shift),
			  punch_count = VALUES(punch_count), double_punches = VALUES(double_punches),
			  batch_id = VALUES(batch_id), updated_at = CURRENT_TIMESTAMP(6)`
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return 0, fmt.Errorf("upsert %d rows of daily_attendance: %w", len(chunk), err)
		}
	}
	return len(days), nil
}

// readPunches adds every punch of the days of keys that counts to punches:
// not those of which a later version (a higher CLEAN sequence) is loaded,
// on this day or another (daily.Counted). The index is
// forced: with a few hundred row constructors the optimizer prefers the
// (user_id, occurred_at) index and then reads every day of those users.
func readPunches(ctx context.Context, tx *sql.Tx, keys []daily.Key, punches map[daily.Key][]daily.Punch) error {
	args := make([]any, 0, 3*len(keys))
	for _, k := range keys {
		args = append(args, k.WorkDate, k.Site, k.UserID)
	}
	rs, err := tx.QueryContext(ctx, `SELECT DATE_FORMAT(work_date, '%Y-%m-%d'), site, user_id,
		raw_id, clean_sequence, coalesce(person_id, ''), occurred_at, time_zone, direction,
		shift, late_minutes, early_leave_minutes, overtime_minutes
		FROM attendance_events e FORCE INDEX (attendance_events_day_idx)
		WHERE (work_date, site, user_id) IN (`+repeatRows("(?, ?, ?)", len(keys))+`)
		  AND NOT EXISTS (SELECT 1 FROM attendance_events v WHERE v.raw_id = e.raw_id AND v.clean_sequence > e.clean_sequence)
		LOCK IN SHARE MODE`, args...)
	if err != nil {
		return fmt.Errorf("read punches of %d days: %w", len(keys), err)
	}
	for rs.Next() {
		var (
			k daily.Key
			p daily.Punch
		)
		if err := rs.Scan(&k.WorkDate, &k.Site, &k.UserID, &p.RawID, &p.CleanSeq, &p.PersonID, &p.OccurredAt, &p.TimeZone, &p.Direction,
			&p.Shift, &p.LateMinutes, &p.EarlyLeaveMinutes, &p.OvertimeMinutes); err != nil {
			rs.Close()
			return fmt.Errorf("read punches of %d days: %w", len(keys), err)
		}
		punches[k] = append(punches[k], p)
	}
	if err := errors.Join(rs.Err(), rs.Close()); err != nil {
		return fmt.Errorf("read punches of %d days: %w", len(keys), err)
	}
	return nil
}

func optionalTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func repeatRows(row string, n int) string {
	var b strings.Builder
	b.Grow((len(row) + 2) * n)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}
