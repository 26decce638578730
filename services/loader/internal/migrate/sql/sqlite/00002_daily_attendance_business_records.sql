-- Daily attendance and business records; see the PostgreSQL migration of
-- the same number for what each table holds. Instants are UTC RFC 3339 text
-- with nine fraction digits, dates YYYY-MM-DD text, JSON is text that
-- json_valid accepts.

-- attendance_events gains the fields of schema 1.1 (the roster's
-- department and version, the assigned shift and its instants, the rounded
-- instant, the transformer's late, early-leave and overtime minutes, the
-- clock correction): absent ones are NULL instants, '' and 0. The daily
-- summary takes a day's late minutes from its first "in" and its early-leave
-- and overtime minutes from its last "out" when the transformer assigned a
-- shift to them.

-- +goose Up
ALTER TABLE attendance_events ADD COLUMN department TEXT NOT NULL DEFAULT '';
ALTER TABLE attendance_events ADD COLUMN roster_version TEXT NOT NULL DEFAULT '';
ALTER TABLE attendance_events ADD COLUMN shift TEXT NOT NULL DEFAULT '';
ALTER TABLE attendance_events ADD COLUMN shift_start TEXT CHECK (shift_start IS NULL OR length(shift_start) = 30);
ALTER TABLE attendance_events ADD COLUMN shift_end TEXT CHECK (shift_end IS NULL OR length(shift_end) = 30);
ALTER TABLE attendance_events ADD COLUMN rounded_at TEXT CHECK (rounded_at IS NULL OR length(rounded_at) = 30);
ALTER TABLE attendance_events ADD COLUMN late_minutes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attendance_events ADD COLUMN early_leave_minutes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attendance_events ADD COLUMN overtime_minutes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attendance_events ADD COLUMN clock_offset_ms INTEGER NOT NULL DEFAULT 0;

DROP INDEX attendance_events_site_work_date_idx;
CREATE INDEX attendance_events_day_idx ON attendance_events (work_date, site, user_id);

CREATE TABLE daily_attendance (
    site           TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    work_date      TEXT    NOT NULL CHECK (date(work_date) IS work_date),
    person_id      TEXT,
    time_zone      TEXT    NOT NULL,
    first_in       TEXT    CHECK (first_in IS NULL OR (length(first_in) = 30 AND substr(first_in, 30) = 'Z')),
    last_out       TEXT    CHECK (last_out IS NULL OR (length(last_out) = 30 AND substr(last_out, 30) = 'Z')),
    worked_minutes INTEGER NOT NULL CHECK (worked_minutes >= 0),
    late_minutes   INTEGER NOT NULL CHECK (late_minutes >= 0),
    early_leave_minutes INTEGER NOT NULL DEFAULT 0 CHECK (early_leave_minutes >= 0),
    overtime_minutes    INTEGER NOT NULL DEFAULT 0 CHECK (overtime_minutes >= 0),
    shift          TEXT    NOT NULL DEFAULT '',
    punch_count    INTEGER NOT NULL CHECK (punch_count >= 0),
    double_punches INTEGER NOT NULL CHECK (double_punches >= 0),
    batch_id       TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000000Z', 'now')),
    PRIMARY KEY (work_date, site, user_id)
) STRICT;

CREATE TABLE business_records (
    id             TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    rules_version  TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    natural_key    TEXT    NOT NULL,
    occurred_at    TEXT    CHECK (occurred_at IS NULL OR (length(occurred_at) = 30 AND substr(occurred_at, 30) = 'Z')),
    fields         TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(fields)),
    payload        TEXT    NOT NULL CHECK (json_valid(payload)),
    raw_id         TEXT    NOT NULL,
    raw_subject    TEXT    NOT NULL,
    raw_stream     TEXT    NOT NULL,
    raw_sequence   INTEGER NOT NULL CHECK (raw_sequence >= 0),
    clean_sequence INTEGER NOT NULL CHECK (clean_sequence >= 0),
    run_id         TEXT    NOT NULL DEFAULT '',
    correlation_id TEXT    NOT NULL DEFAULT '',
    batch_id       TEXT    NOT NULL,
    loaded_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000000Z', 'now'))
) STRICT;

CREATE INDEX business_records_source_key_idx ON business_records (source, natural_key);

-- +goose Down
DROP TABLE business_records;
DROP TABLE daily_attendance;
DROP INDEX attendance_events_day_idx;
CREATE INDEX attendance_events_site_work_date_idx ON attendance_events (site, work_date);
ALTER TABLE attendance_events DROP COLUMN clock_offset_ms;
ALTER TABLE attendance_events DROP COLUMN overtime_minutes;
ALTER TABLE attendance_events DROP COLUMN early_leave_minutes;
ALTER TABLE attendance_events DROP COLUMN late_minutes;
ALTER TABLE attendance_events DROP COLUMN rounded_at;
ALTER TABLE attendance_events DROP COLUMN shift_end;
ALTER TABLE attendance_events DROP COLUMN shift_start;
ALTER TABLE attendance_events DROP COLUMN shift;
ALTER TABLE attendance_events DROP COLUMN roster_version;
ALTER TABLE attendance_events DROP COLUMN department;
