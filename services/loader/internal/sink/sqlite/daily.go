package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/daily"
	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// recompute recomputes the days of keys from their punches that count (a
// punch's latest version, daily.Counted) and upserts them into
// daily_attendance, recording batchID as the batch that last recomputed
// them; a day none of whose punches counts any more loses its row. The
// transaction holds SQLite's write lock (BEGIN
// IMMEDIATE), so no other writer can add a punch meanwhile. It returns how
// many days it wrote.
func (s *Sink) recompute(ctx context.Context, tx *sql.Tx, batchID string, keys []daily.Key, now time.Time) (int, error) {
	keys = daily.SortedKeys(keys)
	if len(keys) == 0 {
		return 0, nil
	}
	read, err := tx.PrepareContext(ctx, readPunchesSQL)
	if err != nil {
		return 0, fmt.Errorf("prepare reading punches: %w", err)
	}
	defer read.Close()
	punches := make(map[daily.Key][]daily.Punch, len(keys))
	for _, k := range keys {
		rs, err := read.QueryContext(ctx, k.WorkDate, k.Site, k.UserID)
		if err != nil {
			return 0, fmt.Errorf("read punches of %s/%s/%s: %w", k.Site, k.UserID, k.WorkDate, err)
		}
		for rs.Next() {
			var (
				p  daily.Punch
				at string
			)
			if err := rs.Scan(&p.RawID, &p.CleanSeq, &p.PersonID, &at, &p.TimeZone, &p.Direction,
				&p.Shift, &p.LateMinutes, &p.EarlyLeaveMinutes, &p.OvertimeMinutes); err != nil {
				rs.Close()
				return 0, fmt.Errorf("read punches of %s/%s/%s: %w", k.Site, k.UserID, k.WorkDate, err)
			}
			if p.OccurredAt, err = time.Parse(time.RFC3339Nano, at); err != nil {
				rs.Close()
				return 0, fmt.Errorf("read punches of %s/%s/%s: occurred_at %q: %w", k.Site, k.UserID, k.WorkDate, at, err)
			}
			punches[k] = append(punches[k], p)
		}
		if err := rs.Close(); err != nil {
			return 0, err
		}
		if err := rs.Err(); err != nil {
			return 0, fmt.Errorf("read punches of %s/%s/%s: %w", k.Site, k.UserID, k.WorkDate, err)
		}
	}
	days, err := s.days.Days(punches)
	if err != nil {
		return 0, fault.NewPermanent(proto.ReasonRejectedBySink, err)
	}
	// A day none of whose punches counts any more (a replay moved them
	// all to other days) has no row.
	for _, k := range keys {
		if len(punches[k]) > 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, deleteDaySQL, k.WorkDate, k.Site, k.UserID); err != nil {
			return 0, fmt.Errorf("delete the row of %s/%s/%s: %w", k.Site, k.UserID, k.WorkDate, err)
		}
	}
	rows := make([][]any, len(days))
	updated := timestamp(now)
	for i, d := range days {
		var person any
		if d.PersonID != "" {
			person = d.PersonID
		}
		rows[i] = []any{d.Site, d.UserID, d.WorkDate, person, d.TimeZone, optionalTimestamp(d.FirstIn), optionalTimestamp(d.LastOut),
			d.WorkedMinutes, d.LateMinutes, d.EarlyLeaveMinutes, d.OvertimeMinutes, d.Shift, d.PunchCount, d.DoublePunches, batchID, updated}
	}
	err = chunked(ctx, tx, rows, upsertDaysSQL, func(ctx context.Context, stmt *sql.Stmt, args []any, from, to int) error {
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("upsert %d rows of daily_attendance: %w", to-from, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(days), nil
}

func optionalTimestamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return timestamp(t)
}

// readPunchesSQL reads the punches of a day that count: not those of which
// a later version (a higher CLEAN sequence) is loaded, on this day or
// another (daily.Counted).
const readPunchesSQL = `SELECT raw_id, clean_sequence, coalesce(person_id, ''), occurred_at, time_zone, direction,
		shift, late_minutes, early_leave_minutes, overtime_minutes
	FROM attendance_events e WHERE work_date = ? AND site = ? AND user_id = ?
	  AND NOT EXISTS (SELECT 1 FROM attendance_events v WHERE v.raw_id = e.raw_id AND v.clean_sequence > e.clean_sequence)`

const deleteDaySQL = `DELETE FROM daily_attendance WHERE work_date = ? AND site = ? AND user_id = ?`

// otherVersions returns the days of the other versions of the
// reprocessed events of b (sink.OtherVersionDays).
func otherVersions(ctx context.Context, tx *sql.Tx, b *sink.Batch) ([]daily.Key, error) {
	return sink.OtherVersionDays(ctx, tx, b, chunkRows, func(n int) string {
		marks := strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
		return `SELECT DISTINCT site, user_id, work_date FROM attendance_events
			WHERE raw_id IN (` + marks + `) AND id NOT IN (` + marks + `)`
	})
}

// upsertDaysSQL returns an upsert of n days.
func upsertDaysSQL(n int) string {
	return values(`INSERT INTO daily_attendance
	(site, user_id, work_date, person_id, time_zone, first_in, last_out,
	 worked_minutes, late_minutes, early_leave_minutes, overtime_minutes, shift,
	 punch_count, double_punches, batch_id, updated_at)
	VALUES `, 16, n) + `
	ON CONFLICT (work_date, site, user_id) DO UPDATE SET
	  person_id = excluded.person_id, time_zone = excluded.time_zone,
	  first_in = excluded.first_in, last_out = excluded.last_out,
	  worked_minutes = excluded.worked_minutes, late_minutes = excluded.late_minutes,
	  early_leave_minutes = excluded.early_leave_minutes, overtime_minutes = excluded.overtime_minutes,
	  shift = excluded.shift,
	  punch_count = excluded.punch_count, double_punches = excluded.double_punches,
	  batch_id = excluded.batch_id, updated_at = excluded.updated_at`
}
