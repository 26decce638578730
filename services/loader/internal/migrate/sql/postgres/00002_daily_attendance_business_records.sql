-- Daily attendance and business records.
--
-- attendance_events stays the punch table. Its (site, work_date) index
-- becomes (work_date, site, user_id): it still serves a site's day (and a
-- day across sites), and it is how a batch finds every punch of the days it
-- recomputes; work_date first keeps one day's entries together, which is
-- how a stream's batches touch them.
--
-- daily_attendance holds one row per (work_date, site, user_id), recomputed
-- by the loader inside the transaction that inserted new punches of that day
-- (see the loader's internal/daily for the rules). batch_id is the batch
-- that last recomputed the row. A day is rewritten once per batch that adds
-- punches to it: fillfactor 70 leaves room on each page for the new version
-- of a row, so that the update stays on its page and touches no index (HOT).
--
-- business_records holds one row per clean record id: typed columns for
-- what every record has, the mapped fields as jsonb (values keep their JSON
-- types and can be indexed), the raw payload as json (kept byte for byte),
-- and the same lineage as attendance_events.

-- attendance_events gains the fields of schema 1.1 (the roster's
-- department and version, the assigned shift and its instants, the rounded
-- instant, the transformer's late, early-leave and overtime minutes, the
-- clock correction): absent ones are NULL instants, '' and 0. The daily
-- summary takes a day's late minutes from its first "in" and its early-leave
-- and overtime minutes from its last "out" when the transformer assigned a
-- shift to them.

-- +goose Up
ALTER TABLE attendance_events
    ADD COLUMN department          text        NOT NULL DEFAULT '',
    ADD COLUMN roster_version      text        NOT NULL DEFAULT '',
    ADD COLUMN shift               text        NOT NULL DEFAULT '',
    ADD COLUMN shift_start         timestamptz,
    ADD COLUMN shift_end           timestamptz,
    ADD COLUMN rounded_at          timestamptz,
    ADD COLUMN late_minutes        integer     NOT NULL DEFAULT 0,
    ADD COLUMN early_leave_minutes integer     NOT NULL DEFAULT 0,
    ADD COLUMN overtime_minutes    integer     NOT NULL DEFAULT 0,
    ADD COLUMN clock_offset_ms     bigint      NOT NULL DEFAULT 0;

DROP INDEX attendance_events_site_work_date_idx;
CREATE INDEX attendance_events_day_idx ON attendance_events (work_date, site, user_id);

CREATE TABLE daily_attendance (
    site           text        NOT NULL,
    user_id        text        NOT NULL,
    work_date      date        NOT NULL,
    person_id      text,
    time_zone      text        NOT NULL,
    first_in       timestamptz,
    last_out       timestamptz,
    worked_minutes integer     NOT NULL,
    late_minutes   integer     NOT NULL,
    early_leave_minutes integer NOT NULL DEFAULT 0,
    overtime_minutes    integer NOT NULL DEFAULT 0,
    shift          text        NOT NULL DEFAULT '',
    punch_count    integer     NOT NULL,
    double_punches integer     NOT NULL,
    batch_id       text        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (work_date, site, user_id),
    CONSTRAINT daily_attendance_counts_check
        CHECK (worked_minutes >= 0 AND late_minutes >= 0 AND early_leave_minutes >= 0
               AND overtime_minutes >= 0 AND punch_count >= 0 AND double_punches >= 0)
) WITH (fillfactor = 70);

CREATE TABLE business_records (
    -- id is CleanID(raw id, rules version): the unique key that makes
    -- loading idempotent.
    id             varchar(64) PRIMARY KEY,
    rules_version  text        NOT NULL,
    source         text        NOT NULL,
    natural_key    text        NOT NULL,
    occurred_at    timestamptz,
    fields         jsonb       NOT NULL DEFAULT '{}',
    payload        json        NOT NULL,
    -- Lineage for audits.
    raw_id         text        NOT NULL,
    raw_subject    text        NOT NULL,
    raw_stream     text        NOT NULL,
    raw_sequence   bigint      NOT NULL,
    clean_sequence bigint      NOT NULL,
    run_id         text        NOT NULL DEFAULT '',
    correlation_id text        NOT NULL DEFAULT '',
    batch_id       text        NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT business_records_sequence_check CHECK (raw_sequence >= 0 AND clean_sequence >= 0)
);

CREATE INDEX business_records_source_key_idx ON business_records (source, natural_key);

-- +goose Down
DROP TABLE business_records;
DROP TABLE daily_attendance;
DROP INDEX attendance_events_day_idx;
CREATE INDEX attendance_events_site_work_date_idx ON attendance_events (site, work_date);
ALTER TABLE attendance_events
    DROP COLUMN department, DROP COLUMN roster_version, DROP COLUMN shift,
    DROP COLUMN shift_start, DROP COLUMN shift_end, DROP COLUMN rounded_at,
    DROP COLUMN late_minutes, DROP COLUMN early_leave_minutes, DROP COLUMN overtime_minutes,
    DROP COLUMN clock_offset_ms;
