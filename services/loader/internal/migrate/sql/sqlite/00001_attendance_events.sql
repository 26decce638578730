-- Clean attendance events, one row per event id, with per-record lineage,
-- and the batch status table operators read.
--
-- Instants (occurred_at, loaded_at, started_at) are UTC RFC 3339 text with
-- exactly nine fraction digits ("2024-03-01T07:58:00.000000000Z"), so that
-- text order is time order; work_date is YYYY-MM-DD text. STRICT tables make
-- SQLite refuse a value of the wrong type instead of storing it.

-- +goose Up
CREATE TABLE attendance_events (
    id             TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    rules_version  TEXT    NOT NULL,
    site           TEXT    NOT NULL,
    device_serial  TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    person_id      TEXT,
    occurred_at    TEXT    NOT NULL CHECK (length(occurred_at) = 30 AND substr(occurred_at, 30) = 'Z'),
    device_time    TEXT    NOT NULL,
    time_zone      TEXT    NOT NULL,
    direction      TEXT    NOT NULL
        CHECK (direction IN ('in', 'out', 'break_out', 'break_in', 'unknown')),
    state          INTEGER NOT NULL CHECK (state BETWEEN 0 AND 255),
    verify_mode    INTEGER NOT NULL,
    work_date      TEXT    NOT NULL CHECK (date(work_date) IS work_date),
    flags          TEXT    NOT NULL DEFAULT '',
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

CREATE INDEX attendance_events_site_work_date_idx ON attendance_events (site, work_date);
CREATE INDEX attendance_events_user_occurred_idx ON attendance_events (user_id, occurred_at);

CREATE TABLE load_batches (
    batch_id    TEXT    NOT NULL PRIMARY KEY,
    sink        TEXT    NOT NULL,
    row_count   INTEGER NOT NULL,
    inserted    INTEGER NOT NULL,
    duplicates  INTEGER NOT NULL,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    started_at  TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('committed', 'failed')),
    error       TEXT
) STRICT;

CREATE INDEX load_batches_sink_started_idx ON load_batches (sink, started_at);

-- +goose Down
DROP TABLE load_batches;
DROP TABLE attendance_events;
