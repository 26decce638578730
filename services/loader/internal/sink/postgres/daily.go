package postgres

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
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
// planFresh and planRecompute) up to date after this transaction inserted
// punches of those days, recording batchID as the batch that last wrote
// them and a new revision for each, and returns the days it wrote.
//
// On the COPY path p knows each day's new punches. A day is then extended
// (daily.Calculator.Extend) when the new punches come after every punch it
// holds, or summarized from the new punches alone when it has no row yet
// (so no punch either: every transaction that inserts a punch writes its
// day's row). Every other day is recomputed from all its punches in
// attendance_events; after a merge every day is.
//
// The state a day is extended from comes from the Sink's cache (dayCache)
// of the days it committed or has in flight, without a read. The planned
// rows are copied into the session's day_stage table, and two statements
// write them: an UPDATE that rewrites a row only while its batch_id and
// revision are still those the cache remembers, and an INSERT of the days
// the cache does not hold that skips a day that has a row. When the two
// wrote fewer rows than planned, the days they skipped (the batch in
// flight they were planned from rolled back, another replica wrote them
// since, the loader restarted) go the slow way: their rows are read, then
// extended or recomputed, then upserted.
//
// Writers of the same days are serialized by transaction-level advisory
// locks on each (site, work date), taken in one global order so that
// writers never deadlock, after the punches are inserted and before the
// rows are read or written: a concurrent writer of the same day waits here
// until this transaction commits and then sees its row and its punches
// (READ COMMITTED takes a new snapshot per statement).
func (s *Sink) summarize(ctx context.Context, tx *txn, batchID string, p *dayPlan) ([]cachedDay, error) {
	if len(p.keys) == 0 {
		return nil, nil
	}
	if len(p.staged) > 0 {
		if _, err := tx.copyIn(ctx, copyDayStageSQL, bytes.NewReader(p.stage)); err != nil {
			return nil, fmt.Errorf("copy %d days into %s: %w", len(p.staged), dayStage, err)
		}
	}
	// The locks and the writes go in one round trip; the server runs them
	// in order, so the writes start once every lock is held.
	var q pgx.Batch
	q.Queue(lockDaysSQL, int32(lockClass), lockIDs(p.keys))
	if len(p.staged) > 0 {
		q.Queue(nestedLoopsSQL)
	}
	if p.updates > 0 {
		q.Queue(updateDaysSQL, batchID)
	}
	if p.inserts > 0 {
		q.Queue(insertDaysSQL, batchID)
	}
	var wrote int64
	br := tx.SendBatch(ctx, &q)
	err := func() error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("lock the dates of %d days: %w", len(p.keys), err)
		}
		if len(p.staged) > 0 {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("plan the joins with %s: %w", daysTable, err)
			}
		}
		if p.updates > 0 {
			tag, err := br.Exec()
			if err != nil {
				return fmt.Errorf("update %d rows of %s: %w", p.updates, daysTable, err)
			}
			wrote += tag.RowsAffected()
		}
		if p.inserts > 0 {
			tag, err := br.Exec()
			if err != nil {
				return fmt.Errorf("insert %d rows of %s: %w", p.inserts, daysTable, err)
			}
			wrote += tag.RowsAffected()
		}
		return nil
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	written, slow := p.staged, p.slow
	if wrote < int64(len(p.staged)) {
		missed, err := missedDays(ctx, tx, batchID, len(p.staged))
		if err != nil {
			return nil, err
		}
		written = make([]cachedDay, 0, len(p.staged))
		for i, d := range p.staged {
			if missed[i] {
				slow = append(slow, p.stagedAt[i])
			} else {
				written = append(written, d)
			}
		}
	}
	if len(slow) == 0 {
		return written, nil
	}
	s.log.DebugContext(ctx, "days read before they are written", slog.String("batch", batchID), slog.Int("days", len(slow)))
	var fresh map[daily.Key][]daily.Punch
	keys := make([]daily.Key, len(slow))
	for i, at := range slow {
		keys[i] = p.keys[at]
	}
	if p.fresh != nil {
		fresh = make(map[daily.Key][]daily.Punch, len(slow))
		for _, at := range slow {
			fresh[p.keys[at]] = p.fresh[at]
		}
	}
	more, err := s.summarizeSlowly(ctx, tx, batchID, daily.SortedKeys(keys), fresh)
	if err != nil {
		return nil, err
	}
	return append(written, more...), nil
}

// missedDays returns, by position in day_stage, the staged days whose row
// the batch did not write.
func missedDays(ctx context.Context, tx *txn, batchID string, staged int) ([]bool, error) {
	rs, err := tx.Query(ctx, missedDaysSQL, batchID)
	if err != nil {
		return nil, fmt.Errorf("find the days of %s not written: %w", daysTable, err)
	}
	missed := make([]bool, staged)
	var n int32
	_, err = pgx.ForEachRow(rs, []any{&n}, func() error {
		if n < 0 || int(n) >= staged {
			return fmt.Errorf("staged day %d, of %d", n, staged)
		}
		missed[n] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find the days of %s not written: %w", daysTable, err)
	}
	return missed, nil
}

// dayPlan is what summarize will write of a batch's days, decided without
// the database.
type dayPlan struct {
	keys  []daily.Key     // every day, sorted
	fresh [][]daily.Punch // the new punches of each day; nil after a merge
	// staged are the days planned without a read, in day_stage order,
	// with their positions in keys; stage is their day_stage rows.
	staged   []cachedDay
	stagedAt []int
	stage    []byte
	// updates and inserts count the staged days that rewrite a row the
	// cache holds and that insert a row.
	updates, inserts int
	slow             []int // positions in keys of the days to read first
}

// planFresh plans the days of the events of b, which the transaction
// inserts (the COPY path), from the cache and the new punches alone, so
// that it can run while the server copies the punches. The days it stages
// are recorded in the cache as planned by the plan it returns, until the
// transaction commits or rolls back (dayCache.commit, abort); on an error
// it forgets them itself.
//
// order is b's events in sink.OrderEvents order, which groups each day's
// punches.
func (s *Sink) planFresh(b *sink.Batch, order []int) (*dayPlan, error) {
	p := &dayPlan{}
	key := func(i int) daily.Key {
		e := &b.Events[i]
		return daily.Key{Site: e.Site, UserID: e.UserID, WorkDate: e.WorkDate}
	}
	punches := make([]daily.Punch, len(order))
	for n, i := range order {
		e := &b.Events[i]
		punches[n] = daily.PunchOf(e.AttendanceEvent, int64(e.Seq))
		// As the recompute would read it back: whole microseconds.
		punches[n].OccurredAt = punches[n].OccurredAt.Truncate(time.Microsecond)
		if n == 0 || key(order[n-1]) != key(i) {
			p.keys = append(p.keys, key(i))
			p.fresh = append(p.fresh, punches[n:n:len(punches)])
		}
		last := len(p.fresh) - 1
		p.fresh[last] = p.fresh[last][:len(p.fresh[last])+1]
	}

	stage := newCopyData(len(p.keys) * 256)
	p.staged, p.stagedAt = make([]cachedDay, 0, len(p.keys)), make([]int, 0, len(p.keys))
	// The days are planned under the cache's lock, from the newest state
	// it knows (committed, or planned by a batch in flight), and become
	// the newest it knows.
	err := s.cache.plan(p, p.keys, func(at int, c cachedDay, cached bool) (cachedDay, bool, error) {
		k := p.keys[at]
		var (
			st  daily.State
			ok  = true
			err error
		)
		if cached {
			st, ok, err = s.days.Extend(c.state, p.fresh[at])
		} else {
			st, err = s.days.Summarize(k, p.fresh[at])
		}
		switch {
		case err != nil:
			return cachedDay{}, false, fault.NewPermanent(proto.ReasonRejectedBySink, err)
		case !ok:
			p.slow = append(p.slow, at)
			return cachedDay{}, false, nil
		}
		d := cachedDay{state: st, batch: b.ID, revision: newRevision()}
		var from *cachedDay // the row an update rewrites; none inserts
		if cached {
			from = &c
		}
		if err := stageDay(stage, len(p.staged), from, &d); err != nil {
			return cachedDay{}, false, err
		}
		p.staged, p.stagedAt = append(p.staged, d), append(p.stagedAt, at)
		if cached {
			p.updates++
		} else {
			p.inserts++
		}
		return d, true, nil
	})
	if err != nil {
		s.cache.abort(p)
		return nil, err
	}
	p.stage = stage.end()
	return p, nil
}

// planRecompute plans the days of keys to be recomputed from all their
// punches (after a merge).
func planRecompute(keys []daily.Key) *dayPlan {
	p := &dayPlan{keys: daily.SortedKeys(keys)}
	p.slow = make([]int, len(p.keys))
	for i := range p.slow {
		p.slow[i] = i
	}
	return p
}

// summarizeSlowly is summarize for days whose rows must be read first:
// each is extended from its row's state when it can be, summarized from
// the new punches when it has no row, and recomputed from all its punches
// otherwise. With fresh nil every day is recomputed. The caller holds the
// days' locks.
func (s *Sink) summarizeSlowly(ctx context.Context, tx *txn, batchID string, keys []daily.Key, fresh map[daily.Key][]daily.Punch) ([]cachedDay, error) {
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
	return upsertDays(ctx, tx, batchID, days)
}

// state is what readStates found of one day.
type state struct {
	daily.State
	exists bool // the day has a row
	known  bool // and the row holds its state
}

// readStates reads the rows of the days of keys, one state per key.
func (s *Sink) readStates(ctx context.Context, tx *txn, keys []daily.Key) ([]state, error) {
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
func (s *Sink) recompute(ctx context.Context, tx *txn, keys []daily.Key) ([]daily.State, error) {
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

// upsertDays writes days, recording batchID as the batch that last wrote
// them and a new revision for each: the slow path, for days whose rows
// were read first. It replaces what day_stage holds with days and upserts
// them from there. A day without a punch that counts (a replay moved every
// punch of it to other days) has no row: its row is deleted. It returns
// the days it wrote.
func upsertDays(ctx context.Context, tx *txn, batchID string, days []daily.State) ([]cachedDay, error) {
	written := make([]cachedDay, 0, len(days))
	var gone []daily.Key
	for _, d := range days {
		if d.PunchCount == 0 {
			gone = append(gone, d.Key)
		} else {
			written = append(written, cachedDay{state: d, batch: batchID, revision: newRevision()})
		}
	}
	if len(gone) > 0 {
		sites, users, dates, err := columns(gone)
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, deleteDaysSQL, sites, users, dates); err != nil {
			return nil, fmt.Errorf("delete %d rows of %s: %w", len(gone), daysTable, err)
		}
	}
	if len(written) == 0 {
		return written, nil
	}
	stage := newCopyData(len(written) * 256)
	for i := range written {
		if err := stageDay(stage, i, nil, &written[i]); err != nil {
			return nil, err
		}
	}
	data := stage.end()
	if _, err := tx.Exec(ctx, clearDayStageSQL); err != nil {
		return nil, fmt.Errorf("clear %s: %w", dayStage, err)
	}
	if _, err := tx.copyIn(ctx, copyDayStageSQL, bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("copy %d days into %s: %w", len(written), dayStage, err)
	}
	if _, err := tx.Exec(ctx, upsertDaysSQL, batchID); err != nil {
		return nil, fmt.Errorf("upsert %d rows of %s: %w", len(written), daysTable, err)
	}
	return written, nil
}

// stageDay appends the day_stage row of w at position n: from is the day
// as the row an update may rewrite holds it (its batch and revision), or
// nil for a day to insert.
func stageDay(stage *copyData, n int, from *cachedDay, w *cachedDay) error {
	d := &w.state
	date, err := time.Parse(time.DateOnly, d.WorkDate)
	if err != nil {
		return fault.NewPermanent(proto.ReasonRejectedBySink, fmt.Errorf("work date %q is not YYYY-MM-DD", d.WorkDate))
	}
	stage.row(len(dayStageColumns))
	stage.int4(int32(n))
	if from != nil {
		stage.text(from.batch)
		stage.int8(from.revision)
	} else {
		stage.null()
		stage.null()
	}
	stage.int8(w.revision)
	stage.text(d.Site)
	stage.text(d.UserID)
	stage.date(date)
	stage.nullText(d.PersonID)
	stage.text(d.TimeZone)
	stage.optTimestamptz(optional(d.FirstIn))
	stage.optTimestamptz(optional(d.LastOut))
	stage.int4(int32(d.WorkedMinutes))
	stage.int4(int32(d.LateMinutes))
	stage.int4(int32(d.EarlyLeaveMinutes))
	stage.int4(int32(d.OvertimeMinutes))
	stage.text(d.Shift)
	stage.int4(int32(d.PunchCount))
	stage.int4(int32(d.DoublePunches))
	stage.int8(d.Worked.Microseconds())
	stage.optTimestamptz(optional(d.LastKept))
	stage.optTimestamptz(optional(d.Last))
	stage.optTimestamptz(optional(d.OpenSince))
	stage.text(d.RulesVersion)
	return nil
}

// optional is nil for the zero instant (none).
func optional(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
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

// readPunchesSQL returns the punches that count (daily.Counted: not those
// of which a later version, a higher CLEAN sequence, is loaded on this day
// or another) of the days given as three arrays, each with the (1-based)
// position of its day: one index range scan per day
// (attendance_events_day_idx), kept so by the LATERAL subquery that OFFSET 0
// keeps from being flattened into a join (see readStatesSQL), and one raw
// id lookup per punch.
const readPunchesSQL = `SELECT k.n, e.raw_id, e.clean_sequence, coalesce(e.person_id, ''), e.occurred_at, e.time_zone, e.direction,
		e.shift, e.late_minutes, e.early_leave_minutes, e.overtime_minutes, e.rules_version
	FROM unnest($1::text[], $2::text[], $3::date[]) WITH ORDINALITY AS k(site, user_id, work_date, n)
	CROSS JOIN LATERAL (SELECT * FROM attendance_events e
	  WHERE e.work_date = k.work_date AND e.site = k.site AND e.user_id = k.user_id OFFSET 0) e
	WHERE NOT EXISTS (SELECT 1 FROM attendance_events v WHERE v.raw_id = e.raw_id AND v.clean_sequence > e.clean_sequence)`

// deleteDaysSQL deletes the rows of the days given as three arrays.
const deleteDaysSQL = `DELETE FROM daily_attendance t
	USING unnest($1::text[], $2::text[], $3::date[]) AS k(site, user_id, work_date)
	WHERE t.work_date = k.work_date AND t.site = k.site AND t.user_id = k.user_id`

// otherVersionsSQL returns the days of the loaded versions of the raw ids
// $1 other than the events $2 (see otherVersions).
const otherVersionsSQL = `SELECT DISTINCT site, user_id, to_char(work_date, 'YYYY-MM-DD') FROM attendance_events
	WHERE raw_id = ANY($1::text[]) AND id <> ALL($2::text[])`

// lockPunchesSQL takes a transaction lock per raw id of $1, in one order
// for every transaction. The two-key form keeps these locks apart from the
// one-key locks of the migrations.
const lockPunchesSQL = `SELECT pg_advisory_xact_lock(` + punchLockClass + `, h)
	FROM (SELECT DISTINCT hashtext(r) AS h FROM unnest($1::text[]) AS r ORDER BY h) AS k`

// punchLockClass is the first key of the punch locks ("pf" in ASCII).
const punchLockClass = "28774"

// otherVersions returns the days of the loaded versions other than ids of
// the punches rawIDs (those of the events of a batch marked reprocessed,
// sink.Reprocessed): a replay may have moved a punch away from them, or
// loaded an older version after a newer one. It first locks the punches
// until the transaction ends: a concurrent batch holding another version
// of one of them commits before the lookup, which then sees it (each
// statement reads what is committed when it starts), or waits for this
// one and sees this batch's version.
func otherVersions(ctx context.Context, tx *txn, rawIDs, ids []string) ([]daily.Key, error) {
	if len(rawIDs) == 0 {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, lockPunchesSQL, rawIDs); err != nil {
		return nil, fmt.Errorf("lock %d reprocessed punches: %w", len(rawIDs), err)
	}
	rs, err := tx.Query(ctx, otherVersionsSQL, rawIDs, ids)
	if err != nil {
		return nil, fmt.Errorf("find other versions of %d reprocessed punches: %w", len(rawIDs), err)
	}
	keys, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (daily.Key, error) {
		var k daily.Key
		err := r.Scan(&k.Site, &k.UserID, &k.WorkDate)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("find other versions of %d reprocessed punches: %w", len(rawIDs), err)
	}
	return keys, nil
}

// dayStage is the session's temporary table of the day rows a
// transaction writes (see summarize): created once per connection, emptied
// at every commit or rollback, never written to the WAL. n is the row's
// position; expected and expected_revision the batch_id and revision of
// the row an update may rewrite, NULL for a day to insert; revision the
// row's new revision.
const dayStage = "day_stage"

var dayStageColumns = []string{"n", "expected", "expected_revision", "revision", "site", "user_id", "work_date", "person_id", "time_zone",
	"first_in", "last_out", "worked_minutes", "late_minutes", "early_leave_minutes", "overtime_minutes",
	"shift", "punch_count", "double_punches", "worked_us", "last_kept_at", "last_at", "open_since", "rules_version"}

const createDayStageSQL = `CREATE TEMP TABLE IF NOT EXISTS ` + dayStage + ` (
	n int4 NOT NULL, expected text, expected_revision int8, revision int8 NOT NULL, site text COLLATE "C" NOT NULL, user_id text COLLATE "C" NOT NULL, work_date date NOT NULL,
	person_id text, time_zone text NOT NULL, first_in timestamptz, last_out timestamptz,
	worked_minutes int4 NOT NULL, late_minutes int4 NOT NULL,
	early_leave_minutes int4 NOT NULL, overtime_minutes int4 NOT NULL, shift text NOT NULL,
	punch_count int4 NOT NULL, double_punches int4 NOT NULL,
	worked_us int8, last_kept_at timestamptz, last_at timestamptz, open_since timestamptz, rules_version text
) ON COMMIT DELETE ROWS`

var copyDayStageSQL = copyStatement(dayStage, dayStageColumns)

const clearDayStageSQL = `DELETE FROM ` + dayStage

// dayColumns are daily_attendance's columns as day_stage holds them;
// batch_id comes from $1.
const dayColumns = `site, user_id, work_date, person_id, time_zone, first_in, last_out,
	 worked_minutes, late_minutes, early_leave_minutes, overtime_minutes, shift,
	 punch_count, double_punches, worked_us, last_kept_at, last_at, open_since, rules_version, revision`

// insertDaysSQL inserts the staged days to insert that have no row yet.
// day_stage holds them in key order, which is the primary key's.
const insertDaysSQL = `INSERT INTO daily_attendance (` + dayColumns + `, batch_id)
	SELECT ` + dayColumns + `, $1 FROM ` + dayStage + ` WHERE expected IS NULL
	ON CONFLICT (work_date, site, user_id) DO NOTHING`

// upsertDaysSQL inserts or rewrites the rows of every staged day.
const upsertDaysSQL = `INSERT INTO daily_attendance (` + dayColumns + `, batch_id)
	SELECT ` + dayColumns + `, $1 FROM ` + dayStage + `
	ON CONFLICT (work_date, site, user_id) DO UPDATE SET
	  person_id = excluded.person_id, time_zone = excluded.time_zone,
	  first_in = excluded.first_in, last_out = excluded.last_out,
	  worked_minutes = excluded.worked_minutes, late_minutes = excluded.late_minutes,
	  early_leave_minutes = excluded.early_leave_minutes, overtime_minutes = excluded.overtime_minutes,
	  shift = excluded.shift,
	  punch_count = excluded.punch_count, double_punches = excluded.double_punches,
	  worked_us = excluded.worked_us, last_kept_at = excluded.last_kept_at,
	  last_at = excluded.last_at, open_since = excluded.open_since, rules_version = excluded.rules_version,
	  revision = excluded.revision, batch_id = excluded.batch_id, updated_at = now()`

// nestedLoopsSQL makes the rest of the transaction join by nested loops:
// updateDaysSQL, and missedDaysSQL after it (every day of a batch misses
// after a restart, when the cache is empty), then find each row through
// the primary key. A hash join,
// which the planner picks for a table it thinks small or has not analyzed
// yet, reads the whole table for every batch (7 ms for 1,000 days at
// 10,000 rows in EXPLAIN ANALYZE, and growing with the table).
const nestedLoopsSQL = `SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`

// updateDaysSQL rewrites the rows of the staged days to update whose
// batch_id and revision are still those the day expects (the write of the
// state it was extended from), and records the batch id $1 and the new
// revision. With the table's fillfactor the update is heap-only.
const updateDaysSQL = `UPDATE daily_attendance t SET
	  person_id = d.person_id, time_zone = d.time_zone,
	  first_in = d.first_in, last_out = d.last_out,
	  worked_minutes = d.worked_minutes, late_minutes = d.late_minutes,
	  early_leave_minutes = d.early_leave_minutes, overtime_minutes = d.overtime_minutes, shift = d.shift,
	  punch_count = d.punch_count, double_punches = d.double_punches,
	  worked_us = d.worked_us, last_kept_at = d.last_kept_at,
	  last_at = d.last_at, open_since = d.open_since,
	  rules_version = d.rules_version, revision = d.revision, batch_id = $1, updated_at = now()
	FROM ` + dayStage + ` d
	WHERE d.expected IS NOT NULL AND t.work_date = d.work_date AND t.site = d.site AND t.user_id = d.user_id
	  AND t.batch_id = d.expected AND t.revision = d.expected_revision`

// missedDaysSQL returns the position of each staged day whose row the
// batch $1 did not write.
const missedDaysSQL = `SELECT d.n FROM ` + dayStage + ` d
	LEFT JOIN daily_attendance t ON t.work_date = d.work_date AND t.site = d.site AND t.user_id = d.user_id
	WHERE t.batch_id IS DISTINCT FROM $1`
