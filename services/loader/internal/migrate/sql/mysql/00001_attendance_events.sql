-- Clean attendance events, one row per event id, with per-record lineage,
-- and the batch status table operators read. MySQL 8.0.16+ / MariaDB 10.4+
-- (CHECK constraints are enforced).
--
-- Instants are DATETIME(6) holding UTC: the sink must write UTC values and
-- run its sessions with time_zone = '+00:00' (go-sql-driver/mysql DSN:
-- parseTime=true&loc=UTC&time_zone=%27%2B00%3A00%27) so that the defaults
-- below are UTC too. TIMESTAMP is avoided: it converts through the session
-- zone and ends in 2038. utf8mb4_bin makes ids and user ids compare exactly.

-- +goose Up
CREATE TABLE attendance_events (
    id             VARCHAR(64)   NOT NULL,
    rules_version  VARCHAR(128)  NOT NULL,
    site           VARCHAR(128)  NOT NULL,
    device_serial  VARCHAR(128)  NOT NULL,
    user_id        VARCHAR(128)  NOT NULL,
    person_id      VARCHAR(128)  NULL,
    occurred_at    DATETIME(6)   NOT NULL,
    device_time    VARCHAR(32)   NOT NULL,
    time_zone      VARCHAR(64)   NOT NULL,
    direction      VARCHAR(16)   NOT NULL,
    state          INT           NOT NULL,
    verify_mode    INT           NOT NULL,
    work_date      DATE          NOT NULL,
    flags          VARCHAR(1024) NOT NULL DEFAULT '',
    raw_id         VARCHAR(128)  NOT NULL,
    raw_subject    VARCHAR(255)  NOT NULL,
    raw_stream     VARCHAR(128)  NOT NULL,
    raw_sequence   BIGINT        NOT NULL,
    clean_sequence BIGINT        NOT NULL,
    run_id         VARCHAR(128)  NOT NULL DEFAULT '',
    correlation_id VARCHAR(128)  NOT NULL DEFAULT '',
    batch_id       VARCHAR(128)  NOT NULL,
    loaded_at      DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY attendance_events_site_work_date_idx (site, work_date),
    KEY attendance_events_user_occurred_idx (user_id, occurred_at),
    CONSTRAINT attendance_events_direction_check
        CHECK (direction IN ('in', 'out', 'break_out', 'break_in', 'unknown')),
    CONSTRAINT attendance_events_state_check CHECK (state BETWEEN 0 AND 255),
    CONSTRAINT attendance_events_sequence_check CHECK (raw_sequence >= 0 AND clean_sequence >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE load_batches (
    batch_id    VARCHAR(128) NOT NULL,
    sink        VARCHAR(128) NOT NULL,
    row_count   INT          NOT NULL,
    inserted    INT          NOT NULL,
    duplicates  INT          NOT NULL,
    first_seq   BIGINT       NOT NULL,
    last_seq    BIGINT       NOT NULL,
    started_at  DATETIME(6)  NOT NULL,
    duration_ms BIGINT       NOT NULL,
    outcome     VARCHAR(16)  NOT NULL,
    error       TEXT         NULL,
    PRIMARY KEY (batch_id),
    KEY load_batches_sink_started_idx (sink, started_at),
    CONSTRAINT load_batches_outcome_check CHECK (outcome IN ('committed', 'failed'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- +goose Down
DROP TABLE load_batches;
DROP TABLE attendance_events;
