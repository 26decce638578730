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

// summarize brings the daily_attendance rows of the days of p (see
// planDays) up to date after this transaction inserted punches of those
// days, recording batchID as the batch that last wrote them, and returns
// the days it wrote.
//
// p.fresh holds, by day, the punches the transaction inserted when it
// knows them (the COPY path; nil after a merge). A day is then extended
// (daily.Calculator.Extend) when the new punches come after every punch it
// holds, or summarized from the new punches alone when it has no row yet
// (so no punch either: every transaction that inserts a punch writes its
// day's row). Every other day is recomputed from all its punches in
// attendance_events.
//
// The state a day is extended from comes from the Sink's cache of the days
// it committed, without a read: the row is updated only while its batch_id
// is still the batch the cache remembers, and a day the cache does not
// hold is inserted only if it has no row. The days where that fails
// (another replica wrote them since, the loader restarted) go the slow
// way: their rows are read, then extended or recomputed, then upserted.
//
// Writers of the same days are serialized by transaction-level advisory
// locks on each (site, work date), taken in one global order so that
// writers never deadlock, after the punches are inserted and before the
// rows are read or written: a concurrent writer of the same day waits here
// until this transaction commits and then sees its row and its punches
// (READ COMMITTED takes a new snapshot per statement).
func (s *Sink) summarize(ctx context.Context, tx pgx.Tx, batchID string, p *dayPlan) ([]daily.State, error) {
	if len(p.keys) == 0 {
		return nil, nil
	}
	keys, updates, inserts, slow, fresh := p.keys, p.updates, p.inserts, p.slow, p.fresh
	// The locks and the writes go in one round trip; the server runs them
	// in order, so the writes start once every lock is held.
	var q pgx.Batch
	q.Queue(lockDaysSQL, int32(lockClass), lockIDs(keys))
	if len(updates) > 0 {
		q.Queue(nestedLoopsSQL)
		q.Queue(updateDaysSQL, p.updArgs...)
	}
	if len(inserts) > 0 {
		q.Queue(insertDaysSQL, p.insArgs...)
	}
	written := make([]daily.State, 0, len(keys))
	br := tx.SendBatch(ctx, &q)
	err := func() (err error) {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("lock the dates of %d days: %w", len(keys), err)
		}
		if len(updates) > 0 {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("plan the update of %s: %w", daysTable, err)
			}
			if written, slow, err = returned(br, updates, written, slow); err != nil {
				return fmt.Errorf("update %d rows of %s: %w", len(updates), daysTable, err)
			}
		}
		if len(inserts) > 0 {
			if written, slow, err = returned(br, inserts, written, slow); err != nil {
				return fmt.Errorf("insert %d rows of %s: %w", len(inserts), daysTable, err)
			}
		}
		return nil
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if len(slow) == 0 {
		return written, nil
	}
	more, err := s.summarizeSlowly(ctx, tx, batchID, daily.SortedKeys(slow), fresh)
	if err != nil {
		return nil, err
	}
	return append(written, more...), nil
}

// dayPlan is what summarize will write of a batch's days, decided without
// the database (planDays).
type dayPlan struct {
	keys    []daily.Key                 // every day, sorted
	fresh   map[daily.Key][]daily.Punch // the new punches by day; nil after a merge
	updates []daily.State               // cached days, extended
	inserts []daily.State               // days the cache does not hold, from their new punches
	slow    []daily.Key                 // days to read first
	updArgs []any                       // the parameters of updateDaysSQL
	insArgs []any                       // the parameters of insertDaysSQL
}

// planDays decides how summarize writes the days of keys (see summarize),
// from the cache and the new punches alone, so that it can run while the
// server copies the punches.
func (s *Sink) planDays(batchID string, keys []daily.Key, fresh map[daily.Key][]daily.Punch) (*dayPlan, error) {
	p := &dayPlan{keys: daily.SortedKeys(keys), fresh: fresh}
	if fresh == nil {
		p.slow = p.keys // every day is recomputed
		return p, nil
	}
	var expected []string // the batch each update expects on its row
	for _, k := range p.keys {
		c, cached := s.cache.get(k)
		if !cached {
			st, err := s.days.Summarize(k, fresh[k])
			if err != nil {
				return nil, fault.NewPermanent(proto.ReasonRejectedBySink, err)
			}
			p.inserts = append(p.inserts, st)
			continue
		}
		st, ok, err := s.days.Extend(c.state, fresh[k])
		switch {
		case err != nil:
			return nil, fault.NewPermanent(proto.ReasonRejectedBySink, err)
		case ok:
			p.updates, expected = append(p.updates, st), append(expected, c.batch)
		default:
			p.slow = append(p.slow, k)
		}
	}
	if len(p.updates) > 0 {
		args, err := dayArgs(p.updates)
		if err != nil {
			return nil, err
		}
		p.updArgs = append(args, expected, batchID)
	}
	if len(p.inserts) > 0 {
		args, err := dayArgs(p.inserts)
		if err != nil {
			return nil, err
		}
		p.insArgs = append(args, batchID)
	}
	return p, nil
}

// returned reads the keys that a statement of updateDaysSQL or
// insertDaysSQL returned: it appends each of days (sorted by key) that the
// statement wrote to written, and the key of each it did not write to
// missed.
func returned(br pgx.BatchResults, days []daily.State, written []daily.State, missed []daily.Key) ([]daily.State, []daily.Key, error) {
	rs, err := br.Query()
	if err != nil {
		return written, missed, err
	}
	done := make([]bool, len(days))
	var k daily.Key
	_, err = pgx.ForEachRow(rs, []any{&k.WorkDate, &k.Site, &k.UserID}, func() error {
		i, ok := slices.BinarySearchFunc(days, k, func(d daily.State, k daily.Key) int { return d.Key.Compare(k) })
		if !ok || done[i] {
			return fmt.Errorf("wrote %v, which is not a day of the statement, or twice", k)
		}
		done[i] = true
		return nil
	})
	if err != nil {
		return written, missed, err
	}
	for i, d := range days {
		if done[i] {
			written = append(written, d)
		} else {
			missed = append(missed, d.Key)
		}
	}
	return written, missed, nil
}

// summarizeSlowly is summarize for days whose rows must be read first:
// each is extended from its row's state when it can be, summarized from
// the new punches when it has no row, and recomputed from all its punches
// otherwise. With fresh nil every day is recomputed. The caller holds the
// days' locks.
func (s *Sink) summarizeSlowly(ctx context.Context, tx pgx.Tx, batchID string, keys []daily.Key, fresh map[daily.Key][]daily.Punch) ([]daily.State, error) {
	days := make([]daily.State, 0, len(keys))
	stale := keys
	if fresh != nil {
		states, err := s.readStates(ctx, tx, keys)
		if err != nil {
			return nil, err
		}
		stale = nil
		for i, k := range keys {
			st, ok := states[i], false
			switch {
			case st.known:
				st.State, ok, err = s.days.Extend(st.State, fresh[k])
			case !st.exists:
				st.State, err = s.days.Summarize(k, fresh[k])
				ok = true
			}
			if err != nil {
				return nil, fault.NewPermanent(proto.ReasonRejectedBySink, err)
			}
			if ok {
				days = append(days, st.State)
			} else {
				stale = append(stale, k)
			}
		}
	}
	if len(stale) > 0 {
		recomputed, err := s.recompute(ctx, tx, stale)
		if err != nil {
			return nil, err
		}
		days = append(days, recomputed...)
		slices.SortFunc(days, func(a, b daily.State) int { return a.Key.Compare(b.Key) })
	}
	if err := upsertDays(ctx, tx, batchID, days); err != nil {
		return nil, err
	}
	return days, nil
}

// state is what readStates found of one day.
type state struct {
	daily.State
	exists bool // the day has a row
	known  bool // and the row holds its state
}

// readStates reads the rows of the days of keys, one state per key.
func (s *Sink) readStates(ctx context.Context, tx pgx.Tx, keys []daily.Key) ([]state, error) {
	sites, users, dates, err := columns(keys)
	if err != nil {
		return nil, err
	}
	rs, err := tx.Query(ctx, readStatesSQL, sites, users, dates)
	if err != nil {
		return nil, fmt.Errorf("read %d rows of %s: %w", len(keys), daysTable, err)
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
	if err != nil {
		return nil, fmt.Errorf("read %d rows of %s: %w", len(keys), daysTable, err)
	}
	return out, nil
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
// them: the slow path, for days whose rows were read first. The upsert
// finds each row through the primary key whatever the planner's statistics
// (no join), and with the table's fillfactor the update of an existing row
// is heap-only.
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

// dayArgs returns the columns of days as the parameter arrays dayArrays.
// An instant that is not there (time.Time's zero) goes as 0001-01-01 UTC,
// which dayArrays turns into NULL: a []time.Time is encoded without
// reflection, unlike a slice of nullable values.
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
		firstIn, lastOut             = make([]time.Time, n), make([]time.Time, n)
		worked, late, count, doubles = make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
		early, overtime              = make([]int32, n), make([]int32, n)
		workedUS                     = make([]int64, n)
		lastKept, last, open         = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		versions                     = make([]string, n)
	)
	for i, d := range days {
		persons[i], zones[i], shifts[i] = d.PersonID, d.TimeZone, d.Shift
		firstIn[i], lastOut[i] = d.FirstIn, d.LastOut
		worked[i], late[i], count[i], doubles[i] = int32(d.WorkedMinutes), int32(d.LateMinutes), int32(d.PunchCount), int32(d.DoublePunches)
		early[i], overtime[i] = int32(d.EarlyLeaveMinutes), int32(d.OvertimeMinutes)
		workedUS[i] = d.Worked.Microseconds()
		lastKept[i], last[i], open[i] = d.LastKept, d.Last, d.OpenSince
		versions[i] = d.RulesVersion
	}
	return []any{sites, users, dates, persons, zones, firstIn, lastOut, worked, late, count, doubles,
		early, overtime, shifts, workedUS, lastKept, last, open, versions}, nil
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

// dayArrays are the parameter arrays $1 to $19 of the day rows (see
// dayArgs), unnested as d.
const dayArrays = `unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[],
	            $6::timestamptz[], $7::timestamptz[], $8::int4[], $9::int4[], $10::int4[], $11::int4[],
	            $12::int4[], $13::int4[], $14::text[],
	            $15::int8[], $16::timestamptz[], $17::timestamptz[], $18::timestamptz[], $19::text[]`

const dayArrayNames = `site, user_id, work_date, person_id, time_zone, first_in0, last_out0, worked, late, punches, doubles,
	       early, overtime, shift, worked_us, last_kept_at0, last_at0, open_since0, rules_version`

// noTime is how dayArgs sends a missing instant.
const noTime = `'0001-01-01 00:00:00+00'`

// insertDays inserts the rows of days given as dayArrays, with the batch id
// as $20.
const insertDays = `INSERT INTO daily_attendance
	(site, user_id, work_date, person_id, time_zone, first_in, last_out,
	 worked_minutes, late_minutes, punch_count, double_punches,
	 early_leave_minutes, overtime_minutes, shift,
	 worked_us, last_kept_at, last_at, open_since, rules_version, batch_id)
	SELECT site, user_id, work_date, nullif(person_id, ''), time_zone,
	 nullif(first_in0, ` + noTime + `), nullif(last_out0, ` + noTime + `),
	 worked, late, punches, doubles, early, overtime, shift, worked_us,
	 nullif(last_kept_at0, ` + noTime + `), nullif(last_at0, ` + noTime + `), nullif(open_since0, ` + noTime + `),
	 rules_version, $20
	FROM ` + dayArrays + `) AS d(` + dayArrayNames + `)`

// upsertDaysSQL inserts or rewrites the rows of days.
const upsertDaysSQL = insertDays + `
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

// insertDaysSQL inserts the rows of days that have none yet and returns
// the key of each row it inserted.
const insertDaysSQL = insertDays + `
	ON CONFLICT (work_date, site, user_id) DO NOTHING
	RETURNING to_char(work_date, 'YYYY-MM-DD'), site, user_id`

// nestedLoopsSQL makes the rest of the transaction join by nested loops:
// updateDaysSQL then finds each row through the primary key. A hash join,
// which the planner picks for a table it thinks small or has not analyzed
// yet, reads the whole table for every batch (7 ms for 1,000 days at
// 10,000 rows in EXPLAIN ANALYZE, and growing with the table).
const nestedLoopsSQL = `SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`

// updateDaysSQL rewrites the rows of days whose batch_id is still the one
// given for it in $20 (the batch that wrote the state they were extended
// from), records the batch id $21, and returns the key of each row it
// rewrote. With the table's fillfactor the update is heap-only.
const updateDaysSQL = `UPDATE daily_attendance t SET
	  person_id = nullif(d.person_id, ''), time_zone = d.time_zone,
	  first_in = nullif(d.first_in0, ` + noTime + `), last_out = nullif(d.last_out0, ` + noTime + `),
	  worked_minutes = d.worked, late_minutes = d.late,
	  early_leave_minutes = d.early, overtime_minutes = d.overtime, shift = d.shift,
	  punch_count = d.punches, double_punches = d.doubles,
	  worked_us = d.worked_us, last_kept_at = nullif(d.last_kept_at0, ` + noTime + `),
	  last_at = nullif(d.last_at0, ` + noTime + `), open_since = nullif(d.open_since0, ` + noTime + `),
	  rules_version = d.rules_version, batch_id = $21, updated_at = now()
	FROM ` + dayArrays + `, $20::text[]) AS d(` + dayArrayNames + `, expected)
	WHERE t.work_date = d.work_date AND t.site = d.site AND t.user_id = d.user_id AND t.batch_id = d.expected
	RETURNING to_char(t.work_date, 'YYYY-MM-DD'), t.site, t.user_id`
