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
	"github.com/punchflow/punchflow/services/loader/internal/sink"
)

// lockClass is the first key of the two-key advisory locks on days
// ("pf" and 1), apart from goose's one-key migration lock.
const lockClass = 0x70660001

// summarize brings the daily_attendance rows of the days of keys up to
// date after this transaction inserted punches of those days, recording
// batchID as the batch that last wrote them, and returns how many days it
// wrote.
//
// fresh holds, by day, the punches the transaction inserted when it knows
// them (the COPY path; nil after a merge). A day is then extended from its
// row's state (daily.Calculator.Extend) when the new punches come after
// every punch it holds, or summarized from the new punches alone when it
// has no row yet (so no punch either: every transaction that inserts a
// punch writes its day's row). Every other day is recomputed from all its
// punches in attendance_events.
//
// Writers of the same days are serialized by transaction-level advisory
// locks on each (site, work date), taken in one global order so that
// writers never deadlock, after the punches are inserted and before the
// rows are read: a concurrent writer of the same day waits here until this
// transaction commits and then reads its row and sees its punches (READ
// COMMITTED takes a new snapshot per statement).
func (s *Sink) summarize(ctx context.Context, tx pgx.Tx, batchID string, keys []daily.Key, fresh map[daily.Key][]daily.Punch) (int, error) {
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
	q.Queue(readStatesSQL, sites, users, dates)
	br := tx.SendBatch(ctx, &q)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return 0, fmt.Errorf("lock the dates of %d days: %w", len(keys), err)
	}
	states, err := readStates(br, keys)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("read %d rows of %s: %w", len(keys), daysTable, err)
	}

	days := make([]daily.State, 0, len(keys))
	var stale []daily.Key
	for i, k := range keys {
		st, ok := states[i], false
		switch {
		case fresh == nil:
		case st.known:
			st.State, ok, err = s.days.Extend(st.State, fresh[k])
		case !st.exists:
			st.State, err = s.days.Summarize(k, fresh[k])
			ok = true
		}
		if err != nil {
			return 0, fault.NewPermanent(proto.ReasonRejectedBySink, err)
		}
		if ok {
			days = append(days, st.State)
		} else {
			stale = append(stale, k)
		}
	}
	if len(stale) > 0 {
		recomputed, err := s.recompute(ctx, tx, stale)
		if err != nil {
			return 0, err
		}
		days = append(days, recomputed...)
		slices.SortFunc(days, func(a, b daily.State) int { return a.Key.Compare(b.Key) })
	}
	if err := upsertDays(ctx, tx, batchID, days); err != nil {
		return 0, err
	}
	return len(days), nil
}

// state is what readStates found of one day.
type state struct {
	daily.State
	exists bool // the day has a row
	known  bool // and the row holds its state
}

// readStates scans the rows of readStatesSQL into one state per key.
func readStates(br pgx.BatchResults, keys []daily.Key) ([]state, error) {
	rs, err := br.Query()
	if err != nil {
		return nil, err
	}
	out := make([]state, len(keys))
	var (
		n                                      int64
		worked                                 pgtype.Int8
		lastKept, last, open, firstIn, lastOut pgtype.Timestamptz
		version                                pgtype.Text
		d                                      daily.Day
	)
	_, err = pgx.ForEachRow(rs, []any{&n, &worked, &lastKept, &last, &open, &version,
		&d.PersonID, &d.TimeZone, &firstIn, &lastOut, &d.WorkedMinutes, &d.LateMinutes,
		&d.EarlyLeaveMinutes, &d.OvertimeMinutes, &d.Shift, &d.PunchCount, &d.DoublePunches}, func() error {
		if n < 1 || n > int64(len(keys)) {
			return fmt.Errorf("row of day %d, of %d", n, len(keys))
		}
		d.Key, d.FirstIn, d.LastOut = keys[n-1], firstIn.Time, lastOut.Time
		out[n-1] = state{exists: true, known: worked.Valid && lastKept.Valid && last.Valid && version.Valid,
			State: daily.State{Day: d, Worked: time.Duration(worked.Int64) * time.Microsecond,
				LastKept: lastKept.Time, Last: last.Time, OpenSince: open.Time, RulesVersion: version.String}}
		return nil
	})
	return out, err
}

// recompute summarizes each day of keys from all its punches.
func (s *Sink) recompute(ctx context.Context, tx pgx.Tx, keys []daily.Key) ([]daily.State, error) {
	sites, users, dates, err := columns(keys)
	if err != nil {
		return nil, err
	}
	rs, err := tx.Query(ctx, readPunchesSQL, sites, users, dates)
	if err != nil {
		return nil, fmt.Errorf("read punches of %d days: %w", len(keys), err)
	}
	punches := make([][]daily.Punch, len(keys))
	var (
		n int64
		p daily.Punch
	)
	_, err = pgx.ForEachRow(rs, []any{&n, &p.RawID, &p.CleanSeq, &p.PersonID, &p.OccurredAt, &p.TimeZone, &p.Direction,
		&p.Shift, &p.LateMinutes, &p.EarlyLeaveMinutes, &p.OvertimeMinutes, &p.RulesVersion}, func() error {
		if n < 1 || n > int64(len(keys)) {
			return fmt.Errorf("row of day %d, of %d", n, len(keys))
		}
		punches[n-1] = append(punches[n-1], p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read punches of %d days: %w", len(keys), err)
	}
	out := make([]daily.State, len(keys))
	for i, k := range keys {
		if out[i], err = s.days.Summarize(k, punches[i]); err != nil {
			return nil, fault.NewPermanent(proto.ReasonRejectedBySink, err)
		}
	}
	return out, nil
}

// freshPunches returns the punches of b's events by day, as the recompute
// would read them back (instants in whole microseconds, as stored).
func freshPunches(b *sink.Batch) map[daily.Key][]daily.Punch {
	out := make(map[daily.Key][]daily.Punch)
	for i := range b.Events {
		e := &b.Events[i]
		k := daily.Key{Site: e.Site, UserID: e.UserID, WorkDate: e.WorkDate}
		p := daily.PunchOf(e.AttendanceEvent, int64(e.Seq))
		p.OccurredAt = p.OccurredAt.Truncate(time.Microsecond)
		out[k] = append(out[k], p)
	}
	return out
}

// upsertDays writes days, recording batchID as the batch that last wrote
// them. The upsert finds each row through the primary key whatever the
// planner's statistics (an UPDATE ... FROM the arrays was planned as a scan
// of the whole table while it was young and not analyzed), and with the
// table's fillfactor the update of an existing row is heap-only.
func upsertDays(ctx context.Context, tx pgx.Tx, batchID string, days []daily.State) error {
	args, err := dayArgs(days)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, upsertDaysSQL, append(args, batchID)...); err != nil {
		return fmt.Errorf("upsert %d rows of %s: %w", len(days), daysTable, err)
	}
	return nil
}

// dayArgs returns the columns of days as the parameter arrays $1 to $20 of
// updateDaysSQL and insertDaysSQL.
func dayArgs(days []daily.State) ([]any, error) {
	n := len(days)
	keys := make([]daily.Key, n)
	for i, d := range days {
		keys[i] = d.Key
	}
	sites, users, dates, err := columns(keys)
	if err != nil {
		return nil, err
	}
	var (
		persons, zones, shifts       = make([]string, n), make([]string, n), make([]string, n)
		firstIn, lastOut             = make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
		worked, late, count, doubles = make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
		early, overtime              = make([]int32, n), make([]int32, n)
		workedUS                     = make([]int64, n)
		lastKept, last, open         = make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
		versions                     = make([]string, n)
	)
	for i, d := range days {
		persons[i], zones[i], shifts[i] = d.PersonID, d.TimeZone, d.Shift
		firstIn[i] = timestamptz(d.FirstIn)
		lastOut[i] = timestamptz(d.LastOut)
		worked[i], late[i], count[i], doubles[i] = int32(d.WorkedMinutes), int32(d.LateMinutes), int32(d.PunchCount), int32(d.DoublePunches)
		early[i], overtime[i] = int32(d.EarlyLeaveMinutes), int32(d.OvertimeMinutes)
		workedUS[i] = d.Worked.Microseconds()
		lastKept[i], last[i], open[i] = timestamptz(d.LastKept), timestamptz(d.Last), timestamptz(d.OpenSince)
		versions[i] = d.RulesVersion
	}
	return []any{sites, users, dates, persons, zones, firstIn, lastOut, worked, late, count, doubles,
		early, overtime, shifts, workedUS, lastKept, last, open, versions}, nil
}

func timestamptz(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// lockIDs returns the advisory lock ids of the (site, work date) pairs of
// keys, sorted and distinct, so that every writer takes its locks in the
// same order. A batch of a stream touches few dates, so it takes few locks;
// two pairs that share an id (a hash collision) only serialise their
// writers.
func lockIDs(keys []daily.Key) []int32 {
	ids := make([]int32, len(keys))
	h := fnv.New32a()
	for i, k := range keys {
		h.Reset()
		for _, part := range []string{k.Site, k.WorkDate} {
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

// readStatesSQL returns the rows of the days given as three arrays, each
// with the (1-based) position of its day. The LATERAL subquery (which LIMIT
// keeps from being flattened into a join) makes it one primary-key lookup
// per day, whatever the planner's statistics say: without it a young table,
// not analyzed yet, is read in full for every batch.
const readStatesSQL = `SELECT k.n, d.worked_us, d.last_kept_at, d.last_at, d.open_since, d.rules_version,
		coalesce(d.person_id, ''), d.time_zone, d.first_in, d.last_out, d.worked_minutes, d.late_minutes,
		d.early_leave_minutes, d.overtime_minutes, d.shift, d.punch_count, d.double_punches
	FROM unnest($1::text[], $2::text[], $3::date[]) WITH ORDINALITY AS k(site, user_id, work_date, n)
	CROSS JOIN LATERAL (SELECT * FROM daily_attendance d
	  WHERE d.work_date = k.work_date AND d.site = k.site AND d.user_id = k.user_id LIMIT 1) d`

// readPunchesSQL returns every punch of the days given as three arrays,
// each with the (1-based) position of its day: one index range scan per day
// (attendance_events_day_idx), kept so by the LATERAL subquery that OFFSET 0
// keeps from being flattened into a join (see readStatesSQL).
const readPunchesSQL = `SELECT k.n, e.raw_id, e.clean_sequence, coalesce(e.person_id, ''), e.occurred_at, e.time_zone, e.direction,
		e.shift, e.late_minutes, e.early_leave_minutes, e.overtime_minutes, e.rules_version
	FROM unnest($1::text[], $2::text[], $3::date[]) WITH ORDINALITY AS k(site, user_id, work_date, n)
	CROSS JOIN LATERAL (SELECT * FROM attendance_events e
	  WHERE e.work_date = k.work_date AND e.site = k.site AND e.user_id = k.user_id OFFSET 0) e`

// upsertDaysSQL inserts or rewrites the rows of days given as parameter
// arrays (see dayArgs), with the batch id as $20.
const upsertDaysSQL = `INSERT INTO daily_attendance
	(site, user_id, work_date, person_id, time_zone, first_in, last_out,
	 worked_minutes, late_minutes, punch_count, double_punches,
	 early_leave_minutes, overtime_minutes, shift,
	 worked_us, last_kept_at, last_at, open_since, rules_version, batch_id)
	SELECT site, user_id, work_date, nullif(person_id, ''), time_zone, first_in, last_out,
	 worked, late, punches, doubles, early, overtime, shift,
	 worked_us, last_kept_at, last_at, open_since, rules_version, $20
	FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[],
	            $6::timestamptz[], $7::timestamptz[], $8::int4[], $9::int4[], $10::int4[], $11::int4[],
	            $12::int4[], $13::int4[], $14::text[],
	            $15::int8[], $16::timestamptz[], $17::timestamptz[], $18::timestamptz[], $19::text[])
	  AS d(site, user_id, work_date, person_id, time_zone, first_in, last_out, worked, late, punches, doubles,
	       early, overtime, shift, worked_us, last_kept_at, last_at, open_since, rules_version)
	ON CONFLICT (work_date, site, user_id) DO UPDATE SET
	  person_id = excluded.person_id, time_zone = excluded.time_zone,
	  first_in = excluded.first_in, last_out = excluded.last_out,
	  worked_minutes = excluded.worked_minutes, late_minutes = excluded.late_minutes,
	  early_leave_minutes = excluded.early_leave_minutes, overtime_minutes = excluded.overtime_minutes,
	  shift = excluded.shift,
	  punch_count = excluded.punch_count, double_punches = excluded.double_punches,
	  worked_us = excluded.worked_us, last_kept_at = excluded.last_kept_at,
	  last_at = excluded.last_at, open_since = excluded.open_since, rules_version = excluded.rules_version,
	  batch_id = excluded.batch_id, updated_at = now()`
