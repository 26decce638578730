-- The state columns of daily_attendance that the PostgreSQL sink uses to
-- extend a day incrementally (see postgres/00003). This sink recomputes
-- each day from its punches and leaves them NULL; they are here so that the
-- three dialects keep one logical schema.

-- +goose Up
ALTER TABLE daily_attendance
    ADD COLUMN worked_us     BIGINT       NULL,
    ADD COLUMN last_kept_at  DATETIME(6)  NULL,
    ADD COLUMN last_at       DATETIME(6)  NULL,
    ADD COLUMN open_since    DATETIME(6)  NULL,
    ADD COLUMN rules_version VARCHAR(128) NULL;

-- +goose Down
ALTER TABLE daily_attendance
    DROP COLUMN rules_version,
    DROP COLUMN open_since,
    DROP COLUMN last_at,
    DROP COLUMN last_kept_at,
    DROP COLUMN worked_us;
