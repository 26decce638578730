-- The state columns of daily_attendance that the PostgreSQL sink uses to
-- extend a day incrementally (see postgres/00003). This sink recomputes
-- each day from its punches and leaves them NULL; they are here so that the
-- three dialects keep one logical schema.

-- +goose Up
ALTER TABLE daily_attendance ADD COLUMN worked_us INTEGER;
ALTER TABLE daily_attendance ADD COLUMN last_kept_at TEXT;
ALTER TABLE daily_attendance ADD COLUMN last_at TEXT;
ALTER TABLE daily_attendance ADD COLUMN open_since TEXT;
ALTER TABLE daily_attendance ADD COLUMN rules_version TEXT;

-- +goose Down
ALTER TABLE daily_attendance DROP COLUMN rules_version;
ALTER TABLE daily_attendance DROP COLUMN open_since;
ALTER TABLE daily_attendance DROP COLUMN last_at;
ALTER TABLE daily_attendance DROP COLUMN last_kept_at;
ALTER TABLE daily_attendance DROP COLUMN worked_us;
