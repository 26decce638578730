-- Clean attendance events, one row per event id, with per-record lineage,
-- and the batch status table operators read.

-- +goose Up
CREATE TABLE attendance_events (
    -- id is CleanID(raw id, rules version): the unique key that makes
    -- loading idempotent.
    id             varchar(64) PRIMARY KEY,
    rules_version  text        NOT NULL,
    site           text        NOT NULL,
    device_serial  text        NOT NULL,
    user_id        text        NOT NULL,
    person_id      text,
    occurred_at    timestamptz NOT NULL,
    device_time    text        NOT NULL,
    time_zone      text        NOT NULL,
    direction      text        NOT NULL,
    state          integer     NOT NULL,
    verify_mode    integer     NOT NULL,
    work_date      date        NOT NULL,
    -- flags are comma-separated finding codes, '' when there are none.
    flags          text        NOT NULL DEFAULT '',
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
    CONSTRAINT attendance_events_direction_check
        CHECK (direction IN ('in', 'out', 'break_out', 'break_in', 'unknown')),
    CONSTRAINT attendance_events_state_check CHECK (state BETWEEN 0 AND 255),
    CONSTRAINT attendance_events_sequence_check CHECK (raw_sequence >= 0 AND clean_sequence >= 0)
);

CREATE INDEX attendance_events_site_work_date_idx ON attendance_events (site, work_date);
CREATE INDEX attendance_events_user_occurred_idx ON attendance_events (user_id, occurred_at);

CREATE TABLE load_batches (
    batch_id    text        PRIMARY KEY,
    sink        text        NOT NULL,
    row_count   integer     NOT NULL,
    inserted    integer     NOT NULL,
    duplicates  integer     NOT NULL,
    first_seq   bigint      NOT NULL,
    last_seq    bigint      NOT NULL,
    started_at  timestamptz NOT NULL,
    duration_ms bigint      NOT NULL,
    outcome     text        NOT NULL,
    error       text,
    CONSTRAINT load_batches_outcome_check CHECK (outcome IN ('committed', 'failed'))
);

CREATE INDEX load_batches_sink_started_idx ON load_batches (sink, started_at);

-- +goose Down
DROP TABLE load_batches;
DROP TABLE attendance_events;
