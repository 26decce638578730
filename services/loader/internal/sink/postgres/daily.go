package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/punchflow/punchflow/platform/fault"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/loader/internal/daily"
)

// lockClass is the first key of the two-key advisory locks on days
// ("pf" and 1), apart from goose's one-key migration lock.
const lockClass = 0x70660001

// recompute locks the days of keys, recomputes each from all its punches
// and upserts it into daily_attendance, recording batchID as the batch that
// last recomputed it. It returns how many days it wrote.
func (s *Sink) recompute(ctx context.Context, tx pgx.Tx, batchID string, keys []daily.Key) (int, error) {
	keys = daily.SortedKeys(keys)
	if len(keys) == 0 {
		return 0, nil
	}
	sites, users, dates, err := columns(keys)
	if err != nil {
		return 0, err
	}
	// The lock and the read go in one round trip; the server runs them in
	// order, so the read starts once every lock is held.
	var q pgx.Batch
	q.Queue(lockDaysSQL, int32(lockClass), lockIDs(keys))
	q.Queue(readPunchesSQL, sites, users, dates)
	br := tx.SendBatch(ctx, &q)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return 0, fmt.Errorf("lock %d days: %w", len(keys), err)
	}
	rs, err := br.Query()
	if err != nil {
		_ = br.Close()
		return 0, fmt.Errorf("read punches of %d days: %w", len(keys), err)
	}
	punches := make(map[daily.Key][]daily.Punch, len(keys))
	var (
		n int64
		p daily.Punch
	)
	_, err = pgx.ForEachRow(rs, []any{&n, &p.RawID, &p.CleanSeq, &p.PersonID, &p.OccurredAt, &p.TimeZone, &p.Direction,
		&p.Shift, &p.LateMinutes, &p.EarlyLeaveMinutes, &p.OvertimeMinutes}, func() error {
		if n < 1 || n > int64(len(keys)) {
			return fmt.Errorf("row of day %d, of %d", n, len(keys))
		}
		k := keys[n-1]
		punches[k] = append(punches[k], p)
		return nil
	})
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("read punches of %d days: %w", len(keys), err)
	}
	days, err := s.days.Days(punches)
	if err != nil {
		return 0, fault.NewPermanent(proto.ReasonRejectedBySink, err)
	}
	if err := upsertDays(ctx, tx, batchID, days); err != nil {
		return 0, err
	}
	return len(days), nil
}

func upsertDays(ctx context.Context, tx pgx.Tx, batchID string, days []daily.Day) error {
	n := len(days)
	keys := make([]daily.Key, n)
	for i, d := range days {
		keys[i] = d.Key
	}
	sites, users, dates, err := columns(keys)
	if err != nil {
		return err
	}
	var (
		persons, zones, shifts       = make([]string, n), make([]string, n), make([]string, n)
		firstIn, lastOut             = make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
		worked, late, count, doubles = make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
		early, overtime              = make([]int32, n), make([]int32, n)
	)
	for i, d := range days {
		persons[i], zones[i], shifts[i] = d.PersonID, d.TimeZone, d.Shift
		firstIn[i] = timestamptz(d.FirstIn)
		lastOut[i] = timestamptz(d.LastOut)
		worked[i], late[i], count[i], doubles[i] = int32(d.WorkedMinutes), int32(d.LateMinutes), int32(d.PunchCount), int32(d.DoublePunches)
		early[i], overtime[i] = int32(d.EarlyLeaveMinutes), int32(d.OvertimeMinutes)
	}
	if _, err := tx.Exec(ctx, upsertDaysSQL, sites, users, dates, persons, zones, firstIn, lastOut,
		worked, late, count, doubles, batchID, early, overtime, shifts); err != nil {
		return fmt.Errorf("upsert %d rows of %s: %w", n, daysTable, err)
	}
	return nil
}

func timestamptz(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// lockIDs returns the advisory lock ids of keys, sorted and distinct, so
// that every writer takes its locks in the same order. Two days that share
// an id (a hash collision) only serialise their writers.
func lockIDs(keys []daily.Key) []int32 {
	ids := make([]int32, len(keys))
	h := fnv.New32a()
	for i, k := range keys {
		h.Reset()
		for _, part := range []string{k.Site, k.UserID, k.WorkDate} {
			_, _ = h.Write([]byte(part))
			_, _ = h.Write([]byte{0})
		}
		ids[i] = int32(h.Sum32())
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// columns splits keys into parameter arrays. A work date that is not a
// date is refused (the events were encoded already, so it cannot happen).
func columns(keys []daily.Key) (sites, users []string, dates []time.Time, err error) {
	sites, users, dates = make([]string, len(keys)), make([]string, len(keys)), make([]time.Time, len(keys))
	for i, k := range keys {
		sites[i], users[i] = k.Site, k.UserID
		if dates[i], err = time.Parse(time.DateOnly, k.WorkDate); err != nil {
			return nil, nil, nil, fault.NewPermanent(proto.ReasonRejectedBySink, fmt.Errorf("work date %q is not YYYY-MM-DD", k.WorkDate))
		}
	}
	return sites, users, dates, nil
}

// lockDaysSQL takes the locks in array order: unnest yields the elements
// in order and the function runs once per row as they come.
const lockDaysSQL = `SELECT count(pg_advisory_xact_lock($1::int4, id)) FROM unnest($2::int4[]) AS id`

// readPunchesSQL returns every punch of the days given as three arrays,
// each with the (1-based) position of its day.
const readPunchesSQL = `SELECT k.n, e.raw_id, e.clean_sequence, coalesce(e.person_id, ''), e.occurred_at, e.time_zone, e.direction,
		e.shift, e.late_minutes, e.early_leave_minutes, e.overtime_minutes
	FROM unnest($1::text[], $2::text[], $3::date[]) WITH ORDINALITY AS k(site, user_id, work_date, n)
	JOIN attendance_events e
	  ON e.work_date = k.work_date AND e.site = k.site AND e.user_id = k.user_id`

const upsertDaysSQL = `INSERT INTO daily_attendance
	(site, user_id, work_date, person_id, time_zone, first_in, last_out,
	 worked_minutes, late_minutes, punch_count, double_punches, batch_id,
	 early_leave_minutes, overtime_minutes, shift)
	SELECT site, user_id, work_date, nullif(person_id, ''), time_zone, first_in, last_out,
	 worked, late, punches, doubles, $12, early, overtime, shift
	FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[],
	            $6::timestamptz[], $7::timestamptz[], $8::int4[], $9::int4[], $10::int4[], $11::int4[],
	            $13::int4[], $14::int4[], $15::text[])
	  AS d(site, user_id, work_date, person_id, time_zone, first_in, last_out, worked, late, punches, doubles,
	       early, overtime, shift)
	ON CONFLICT (work_date, site, user_id) DO UPDATE SET
	  person_id = excluded.person_id, time_zone = excluded.time_zone,
	  first_in = excluded.first_in, last_out = excluded.last_out,
	  worked_minutes = excluded.worked_minutes, late_minutes = excluded.late_minutes,
	  early_leave_minutes = excluded.early_leave_minutes, overtime_minutes = excluded.overtime_minutes,
	  shift = excluded.shift,
	  punch_count = excluded.punch_count, double_punches = excluded.double_punches,
	  batch_id = excluded.batch_id, updated_at = now()`
