-- The revision column of daily_attendance that the PostgreSQL sink stamps
-- on every write of a day's state (see postgres/00005). This sink recomputes
-- each day from its punches and leaves it NULL; it is here so that the
-- three dialects keep one logical schema.

-- +goose Up
ALTER TABLE daily_attendance ADD COLUMN revision BIGINT NULL;

-- +goose Down
ALTER TABLE daily_attendance DROP COLUMN revision;
