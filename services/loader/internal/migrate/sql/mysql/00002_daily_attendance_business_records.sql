-- Daily attendance and business records; see the PostgreSQL migration of
-- the same number for what each table holds. Instants are DATETIME(6) in
-- UTC (the sink's sessions run with time_zone = '+00:00'). JSON columns are
-- LONGTEXT with a json_valid CHECK rather than MySQL's binary JSON type, so
-- that the raw payload is kept byte for byte on MySQL as on MariaDB.

-- attendance_events gains the fields of schema 1.1 (the roster's
-- department and version, the assigned shift and its instants, the rounded
-- instant, the transformer's late, early-leave and overtime minutes, the
-- clock correction): absent ones are NULL instants, '' and 0. The daily
-- summary takes a day's late minutes from its first "in" and its early-leave
-- and overtime minutes from its last "out" when the transformer assigned a
-- shift to them.

-- +goose Up
ALTER TABLE attendance_events
    ADD COLUMN department          VARCHAR(128) NOT NULL DEFAULT '',
    ADD COLUMN roster_version      VARCHAR(128) NOT NULL DEFAULT '',
    ADD COLUMN shift               VARCHAR(128) NOT NULL DEFAULT '',
    ADD COLUMN shift_start         DATETIME(6)  NULL,
    ADD COLUMN shift_end           DATETIME(6)  NULL,
    ADD COLUMN rounded_at          DATETIME(6)  NULL,
    ADD COLUMN late_minutes        INT          NOT NULL DEFAULT 0,
    ADD COLUMN early_leave_minutes INT          NOT NULL DEFAULT 0,
    ADD COLUMN overtime_minutes    INT          NOT NULL DEFAULT 0,
    ADD COLUMN clock_offset_ms     BIGINT       NOT NULL DEFAULT 0;

ALTER TABLE attendance_events
    DROP INDEX attendance_events_site_work_date_idx,
    ADD INDEX attendance_events_day_idx (work_date, site, user_id);

CREATE TABLE daily_attendance (
    site           VARCHAR(128) NOT NULL,
    user_id        VARCHAR(128) NOT NULL,
    work_date      DATE         NOT NULL,
    person_id      VARCHAR(128) NULL,
    time_zone      VARCHAR(64)  NOT NULL,
    first_in       DATETIME(6)  NULL,
    last_out       DATETIME(6)  NULL,
    worked_minutes INT          NOT NULL,
    late_minutes   INT          NOT NULL,
    early_leave_minutes INT     NOT NULL DEFAULT 0,
    overtime_minutes    INT     NOT NULL DEFAULT 0,
    shift          VARCHAR(128) NOT NULL DEFAULT '',
    punch_count    INT          NOT NULL,
    double_punches INT          NOT NULL,
    batch_id       VARCHAR(128) NOT NULL,
    updated_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (work_date, site, user_id),
    CONSTRAINT daily_attendance_counts_check
        CHECK (worked_minutes >= 0 AND late_minutes >= 0 AND early_leave_minutes >= 0
               AND overtime_minutes >= 0 AND punch_count >= 0 AND double_punches >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE business_records (
    id             VARCHAR(64)  NOT NULL,
    rules_version  VARCHAR(128) NOT NULL,
    source         VARCHAR(128) NOT NULL,
    natural_key    VARCHAR(512) NOT NULL,
    occurred_at    DATETIME(6)  NULL,
    fields         LONGTEXT     NOT NULL,
    payload        LONGTEXT     NOT NULL,
    raw_id         VARCHAR(128) NOT NULL,
    raw_subject    VARCHAR(255) NOT NULL,
    raw_stream     VARCHAR(128) NOT NULL,
    raw_sequence   BIGINT       NOT NULL,
    clean_sequence BIGINT       NOT NULL,
    run_id         VARCHAR(128) NOT NULL DEFAULT '',
    correlation_id VARCHAR(128) NOT NULL DEFAULT '',
    batch_id       VARCHAR(128) NOT NULL,
    loaded_at      DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY business_records_source_key_idx (source, natural_key),
    CONSTRAINT business_records_fields_check CHECK (json_valid(fields)),
    CONSTRAINT business_records_payload_check CHECK (json_valid(payload)),
    CONSTRAINT business_records_sequence_check CHECK (raw_sequence >= 0 AND clean_sequence >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- +goose Down
DROP TABLE business_records;
DROP TABLE daily_attendance;
ALTER TABLE attendance_events
    DROP INDEX attendance_events_day_idx,
    ADD INDEX attendance_events_site_work_date_idx (site, work_date);
ALTER TABLE attendance_events
    DROP COLUMN department, DROP COLUMN roster_version, DROP COLUMN shift,
    DROP COLUMN shift_start, DROP COLUMN shift_end, DROP COLUMN rounded_at,
    DROP COLUMN late_minutes, DROP COLUMN early_leave_minutes, DROP COLUMN overtime_minutes,
    DROP COLUMN clock_offset_ms;
